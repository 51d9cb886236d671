"""One entry point, ``create_model``, for every backbone: a list of stages plus a head.

Stages give uniform access for partial unfreezing (``trainable_stages``: the last N stages train)
and for feature maps (Grad-CAM hooks the last stage). Our own backbones are registered in
``BACKBONES``; any other name is looked up in torchvision, so a new torchvision backbone needs
only a YAML file in ``conf/model/``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from asl import ASLError
from asl.models.fusion import create_fusion
from asl.models.heads import create_head
from asl.models.landmark_mlp import create_landmark_mlp
from asl.models.small_cnn import small_cnn_stages
from asl.models.torchvision import load_torchvision, torchvision_names, torchvision_stages

BACKBONES: dict[str, Callable[..., list[nn.Module]]] = {"small_cnn": small_cnn_stages}
MODELS: dict[str, Callable[..., nn.Module]] = {"landmark_mlp": create_landmark_mlp, "fusion": create_fusion}


def available_models() -> list[str]:
    return sorted(BACKBONES) + sorted(MODELS) + torchvision_names()


class Classifier(nn.Module):
    """Backbone stages followed by a head; knows which stages train."""

    def __init__(self, stages: list[nn.Module], head: nn.Module):
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.head = head
        self.trainable_stages: int = len(stages)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))

    def backbone_parameters(self):
        return self.stages.parameters()

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

    def train(self, mode: bool = True) -> Classifier:
        """Frozen stages keep BatchNorm in eval mode, so their running statistics stay as loaded."""
        super().train(mode)
        frozen = len(self.stages) - self.trainable_stages
        for stage in list(self.stages)[:frozen]:
            for m in stage.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self


def create_model(
    name: str,
    num_classes: int,
    pretrained: str | None = None,
    weights_path: str | None = None,
    trainable_stages: int | str = "all",
    head: dict[str, Any] | None = None,
    input_size: int = 64,
    **backbone_kwargs: Any,
) -> Classifier:
    """Build backbone ``name`` with a fresh ``head`` for ``num_classes``, stages frozen as asked."""
    if name in MODELS:  # whole models with their own inputs (landmarks, image + landmarks)
        return MODELS[name](num_classes=num_classes, pretrained=pretrained, weights_path=weights_path,
                            trainable_stages=trainable_stages, input_size=input_size, **backbone_kwargs)
    if name in BACKBONES:
        if pretrained or weights_path:
            raise ASLError(f"model.pretrained/weights_path: {name} has no pretrained weights; train it from scratch")
        stages = BACKBONES[name](**backbone_kwargs)
    elif name in torchvision_names():
        if backbone_kwargs:
            raise ASLError(f"model: unexpected option(s) {sorted(backbone_kwargs)} for torchvision model {name}")
        stages = torchvision_stages(name, load_torchvision(name, pretrained, weights_path))
    else:
        raise ASLError(f"model.name: unknown backbone {name!r}; choose one of {sorted(BACKBONES)} or a torchvision model such as resnet18, vgg16")
    probe = nn.Sequential(*stages).eval()
    with torch.no_grad():
        feats = probe(torch.zeros(1, 3, input_size, input_size))
    if feats.shape[-1] < 1 or feats.shape[-2] < 1:
        raise ASLError(f"data.image_size={input_size} is too small for {name}")
    model = Classifier(stages, create_head(feats.shape[1], num_classes, tuple(feats.shape[-2:]), **(head or {})))
    model.set_trainable_stages(trainable_stages)
    return model
