"""Building objects from configs (``_target_``) without running code a config should not name.

``hydra.utils.instantiate`` calls any importable ``_target_``: a run folder from someone else
could name ``os.system``. Every config group says which namespaces it builds from, and a target
outside them is refused, by name, before anything is imported or called.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from hydra.utils import instantiate

from asl import ASLError

#: The namespaces each kind of config builds from.
TRANSFORMS = ("albumentations.", "asl.data.backgrounds.")
DEVICE_TRANSFORMS = ("kornia.augmentation.",)
OPTIMIZERS = ("torch.optim.",)
SCHEDULERS = ("asl.lit.schedules.", "torch.optim.lr_scheduler.")
CALLBACKS = ("pytorch_lightning.callbacks.", "asl.lit.")
LOGGERS = ("pytorch_lightning.loggers.",)


def _targets(node: Any) -> list[str]:
    """Every ``_target_`` in a config node, nested ones (albumentations.OneOf's transforms) included."""
    if isinstance(node, Mapping):
        own = [str(node["_target_"])] if "_target_" in node else []
        return own + [t for v in node.values() for t in _targets(v)]
    if isinstance(node, Sequence) and not isinstance(node, str):
        return [t for v in node for t in _targets(v)]
    return []


def trusted() -> tuple[str, ...]:
    """Extra namespaces the person running asl trusts everywhere (``ASL_TRUSTED_TARGETS=mypkg.,other.``):
    set in their environment, never by a config or a run folder."""
    return tuple(t.strip() for t in os.environ.get("ASL_TRUSTED_TARGETS", "").split(",") if t.strip())


def check_targets(node: Any, key: str, allowed: Sequence[str]) -> None:
    """Refuse (ASLError naming ``key``) any ``_target_`` outside the ``allowed`` namespaces."""
    allowed = (*allowed, *trusted())
    for target in _targets(node):
        if not target.startswith(tuple(allowed)):
            raise ASLError(f"{key}: _target_ {target!r} is not allowed here; {key} builds only from "
                           f"{', '.join(a.rstrip('.') for a in allowed)} (trust more with ASL_TRUSTED_TARGETS=prefix.)")


def build(node: Any, key: str, allowed: Sequence[str], **kwargs: Any) -> Any:
    """``instantiate(node)`` once every target in it is allowed; a wrong argument is one line naming ``key``."""
    check_targets(node, key, allowed)
    try:
        return instantiate(node, _convert_="all", **kwargs)
    except Exception as e:  # a wrong class name or argument in the YAML
        what = next(iter(_targets(node)), "")
        raise ASLError(f"{key}: cannot build {what} from {node}: {str(e).splitlines()[0][:300]}") from None
