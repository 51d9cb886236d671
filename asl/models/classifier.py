"""Stages plus a head: the shape every model has (see :mod:`asl.models.protocol`), and the pieces
image backbones share: splitting by stride, building the head, loading a weights file.

Stages give uniform access for partial unfreezing (``trainable_stages``: the last N stages train)
and for feature maps (Grad-CAM hooks a stage).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from asl import ASLError
from asl.models.heads import create_head


class StagedModel(nn.Module):
    """Partial unfreezing over ``self.stages`` and ``self.head``, which subclasses set."""

    trainable_stages: int
    pretrained_bn: str | None = None

    def set_trainable_stages(self, n: int | str) -> None:
        """Train only the last ``n`` stages (``all`` = every stage, 0 = frozen feature extractor) and the head."""
        total = len(self.stages)
        if n == "all" or n is None:
            n = total
        if isinstance(n, str) or not 0 <= int(n) <= total:
            raise ASLError(f"model.trainable_stages must be 0..{total} or 'all', got {n!r}")
        self.trainable_stages = int(n)
        for i, stage in enumerate(self.stages):
            stage.requires_grad_(i >= total - self.trainable_stages)
        self.head.requires_grad_(True)
        self.train(self.training)

    def train(self, mode: bool = True) -> StagedModel:
        """Frozen stages keep BatchNorm in eval mode, so their running statistics stay as loaded;
        with ``pretrained_bn == "eval"`` every stage does (:mod:`asl.models.batchnorm`)."""
        super().train(mode)
        frozen = len(self.stages) - self.trainable_stages
        for stage in self.stages if self.pretrained_bn == "eval" else self.stages[:frozen]:
            for m in stage.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self


class Classifier(StagedModel):
    """Image backbone stages followed by a head."""

    def __init__(self, stages: Sequence[nn.Module], head: nn.Module, pretrained_bn: str | None = None):
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.head = head
        self.trainable_stages = len(stages)
        self.pretrained_bn = pretrained_bn

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def build_classifier(name: str, stages: Sequence[nn.Module], num_classes: int, input_size: int,
                     head: dict[str, Any] | None, trainable_stages: int | str,
                     pretrained_bn: str | None = None) -> Classifier:
    """``stages`` + a fresh head for ``num_classes`` (sized by a probe at ``input_size``), stages frozen as asked."""
    probe = nn.Sequential(*stages).eval()
    with torch.no_grad():
        feats = probe(torch.zeros(1, 3, input_size, input_size))
    if feats.shape[-1] < 1 or feats.shape[-2] < 1:
        raise ASLError(f"data.image_size={input_size} is too small for {name}")
    model = Classifier(stages, create_head(feats.shape[1], num_classes, tuple(feats.shape[-2:]), **(head or {})),
                       pretrained_bn)
    model.set_trainable_stages(trainable_stages)
    return model


def downsamples(module: nn.Module) -> bool:
    """Whether some layer in ``module`` has a stride above 1 (halves the resolution, or more)."""
    strides = (getattr(m, "stride", 1) for m in module.modules())
    return any(max(s) > 1 if isinstance(s, tuple | list) else s > 1 for s in strides)


def split_by_stride(layers: Sequence[nn.Module]) -> list[nn.Module]:
    """Group a feature extractor's layers into one stage per output stride, input side first.

    A stage ends before each layer that downsamples, except in the first stage (the stem) before its
    first downsampling: MobileNetV2's 19 layers give strides 2, 4, 8, 16, 32.
    """
    stages: list[list[nn.Module]] = []
    for layer in layers:
        if not stages or (downsamples(layer) and any(downsamples(m) for m in stages[-1])):
            stages.append([])
        stages[-1].append(layer)
    return [nn.Sequential(*s) for s in stages]


def load_weights_file(model: nn.Module, path: str | Path, arch: str, key: str = "model.weights_path",
                      skip: tuple[str, ...] = ()) -> None:
    """Load a state dict file (or a checkpoint dict holding one as ``state_dict``) into ``model``,
    every key matching (strict), but for keys starting with ``skip`` (a classifier we replace)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ASLError(f"{key}: {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        result = model.load_state_dict({k: v for k, v in state.items() if not k.startswith(skip)}, strict=False)
    except Exception as e:  # not a torch file, not a dict, or a tensor of the wrong shape
        detail = " ".join(str(e).split())[:300]
        raise ASLError(f"{key}: {path} is not a {arch} state dict ({type(e).__name__}: {detail})") from None
    missing, unexpected = result.missing_keys, result.unexpected_keys
    if missing or unexpected:
        raise ASLError(f"{key}: {path} is not a {arch} state dict ({len(missing)} keys missing, e.g. {missing[:2]}; "
                       f"{len(unexpected)} unexpected, e.g. {unexpected[:2]})")
