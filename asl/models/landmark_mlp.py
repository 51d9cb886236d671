"""A classifier over the 21 hand landmarks: normalised features → MLP. Trains in seconds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from asl import ASLError
from asl.hands.features import FEATURES, augment, check_augment, feature_dim, features


class LandmarkMLP(nn.Module):
    """(B, 64) landmark rows (see :mod:`asl.hands.features`) → class logits.

    Augmentation runs inside ``forward`` in training mode only (like dropout), so every
    datamodule, worker count and export path gets it without extra plumbing.
    """

    def __init__(self, num_classes: int, features: Sequence[str] = FEATURES, mirror: str = "handedness",
                 use_z: bool = True, hidden: Sequence[int] = (256, 256), dropout: float = 0.2,
                 augment: dict[str, Any] | None = None):
        super().__init__()
        if not 0 <= dropout < 1:
            raise ASLError(f"model.dropout must be in [0, 1), got {dropout}")
        self.kinds, self.mirror, self.use_z = list(features), mirror, bool(use_z)
        self.augment = check_augment(augment)
        layers: list[nn.Module] = [nn.BatchNorm1d(feature_dim(self.kinds, self.use_z))]
        width = feature_dim(self.kinds, self.use_z)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)
        self.num_features = width

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.augment:
            x = augment(x, **self.augment)
        return self.body(features(x, self.kinds, self.mirror, self.use_z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))

    def set_trainable_stages(self, n: int | str) -> None:
        """One stage: nothing to freeze (kept for the LightningModule's unfreeze schedule)."""


def create_landmark_mlp(num_classes: int, pretrained: str | None = None, weights_path: str | None = None,
                        input_size: int | None = None, trainable_stages: int | str = "all",
                        **kwargs: Any) -> LandmarkMLP:
    """``model=landmark_mlp``; image-only options (input size, pretrained weights) do not apply."""
    if pretrained or weights_path:
        raise ASLError("model.pretrained/weights_path: landmark_mlp has no pretrained weights")
    try:
        return LandmarkMLP(num_classes, **kwargs)
    except TypeError as e:
        raise ASLError(f"model: {e}") from None
