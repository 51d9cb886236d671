"""The model registry, as timm's: ``@register_model(name)`` files a builder, ``create_model`` calls it.

This module imports no model file, so a model module may import ``create_model`` (fusion builds its
branches with it). ``asl.models`` imports every model module, and each registers its names.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from asl import ASLError

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Decorator: ``create_model(name, num_classes, **config)`` calls the decorated builder."""
    def register(builder: Builder) -> Builder:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        _MODELS[name] = builder
        return builder
    return register


#: ``model.*`` keys about training, the run or the input contract (asl.inputs), not the architecture:
#: the LightningModule and fusion's branches strip them before ``create_model``.
RUN_KEYS = ("unfreeze_at_epoch", "backbone_lr_mult", "channels_last", "compile", "cache_features", "inputs", "mean", "std")


def architecture(cfg: dict[str, Any]) -> dict[str, Any]:
    """A model config without its :data:`RUN_KEYS`: what ``create_model`` takes."""
    return {k: v for k, v in cfg.items() if k not in RUN_KEYS}


def available_models() -> list[str]:
    return sorted(_MODELS)


def create_model(name: str, num_classes: int, **kwargs: Any) -> nn.Module:
    """Build model ``name`` for ``num_classes`` classes; ``kwargs`` are its ``model.*`` config keys."""
    if name not in _MODELS:
        close = ", ".join(difflib.get_close_matches(name, _MODELS, n=3)) or "none"
        raise ASLError(f"model.name: unknown backbone {name!r} (closest: {close}); "
                       f"asl.models.available_models() lists all {len(_MODELS)}")
    builder = _MODELS[name]
    params = inspect.signature(builder).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unexpected = sorted(set(kwargs) - set(params))
        if unexpected:
            raise ASLError(f"model: unexpected option(s) {unexpected} for model {name}; "
                           f"it takes {sorted(set(params) - {'num_classes'})}")
    return builder(num_classes=num_classes, **kwargs)
