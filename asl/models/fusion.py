"""Late fusion: an image backbone on the hand crop plus the landmark MLP, log-probabilities summed.

Where no hand was found (an all-zero landmark row) the image branch decides alone. Both branches
train jointly from scratch, or start from two earlier checkpoints (``model.from_checkpoints``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from asl import ASLError, brief
from asl.hands.features import present
from asl.models.landmark_mlp import LandmarkMLP
from asl.models.registry import architecture, create_model, register_model


class FusionNet(nn.Module):
    """``forward((images, landmarks))`` → fused logits (log-probabilities).

    ``stages`` are the image branch's (Grad-CAM and unfreezing work on it); the landmark body, one
    cheap stage, trains unless ``trainable_stages`` is 0.
    """

    def __init__(self, image: nn.Module, landmarks: LandmarkMLP, landmark_weight: float = 1.0):
        super().__init__()
        self.image, self.landmarks = image, landmarks
        self.landmark_weight = float(landmark_weight)
        self.head = nn.ModuleList([image.head, landmarks.head])  # the optimizer's "head" group
        self.stages = image.stages

    @property
    def trainable_stages(self) -> int:
        return self.image.trainable_stages

    @property
    def pretrained_bn(self) -> str | None:
        return self.image.pretrained_bn

    def forward_features(self, x: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        images, lm = x
        return self.image.forward_features(images), self.landmarks.forward_features(lm)

    def forward(self, x: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        images, lm = x
        out = self.image(images).log_softmax(-1)
        hand = present(lm)[:, None]
        return torch.where(hand, out + self.landmark_weight * self.landmarks(lm).log_softmax(-1), out)

    def set_trainable_stages(self, n: int | str) -> None:
        self.image.set_trainable_stages(n)
        self.landmarks.set_trainable_stages(min(self.trainable_stages, 1))

    def train(self, mode: bool = True) -> FusionNet:
        """The branches last: ``self.stages`` and ``self.head`` alias their modules and would
        otherwise switch frozen BatchNorms back to training."""
        super().train(mode)
        self.image.train(mode)
        self.landmarks.train(mode)
        return self


def _load_net(path: str, prefix: str = "net.") -> dict[str, torch.Tensor]:
    p = Path(path).expanduser()
    if not p.exists():
        raise ASLError(f"model.from_checkpoints: {p} does not exist; pass checkpoints written by asl-train")
    sd = torch.load(p, map_location="cpu", weights_only=True).get("state_dict", {})
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


@register_model("fusion")
def create_fusion(num_classes: int, image: dict[str, Any], landmarks: dict[str, Any], input_size: int = 64,
                  landmark_weight: float = 1.0, from_checkpoints: dict[str, str | None] | None = None,
                  pretrained: bool | None = True, weights_path: str | None = None,
                  trainable_stages: int | str = "all") -> FusionNet:
    """``model=fusion``: ``image`` is an image model config (any backbone), ``landmarks`` a landmark_mlp config.

    ``pretrained`` false/null (as when a checkpoint is rebuilt) loads no weights at all.
    """
    if weights_path:
        raise ASLError("model.weights_path: fusion loads its branches with model.from_checkpoints")
    image, landmarks = architecture(image), architecture(landmarks)  # the fusion model's own keys apply
    img_cfg = {**image, "input_size": input_size, "trainable_stages": trainable_stages}
    if not pretrained:
        img_cfg.update(pretrained=None, weights_path=None)
        from_checkpoints = None
    net = FusionNet(create_model(num_classes=num_classes, **img_cfg),
                    create_model(num_classes=num_classes, **{**landmarks, "name": "landmark_mlp"}), landmark_weight)
    for branch, path in (from_checkpoints or {}).items():
        if path is None:
            continue
        if branch not in ("image", "landmarks"):
            raise ASLError(f"model.from_checkpoints: unknown branch {branch!r}; use image and landmarks")
        try:
            getattr(net, branch).load_state_dict(_load_net(path))
        except RuntimeError as e:
            raise ASLError(f"model.from_checkpoints.{branch}: {path} does not match model.{branch}: {brief(e)}") from None
    net.set_trainable_stages(trainable_stages)
    return net
