"""A classifier over the 21 hand landmarks: normalised features → MLP. Trains in seconds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from asl import ASLError
from asl.hands.features import FEATURES, augment, check_augment, check_scale, feature_dim, features
from asl.models.classifier import StagedModel
from asl.models.registry import register_model


class LandmarkMLP(StagedModel):
    """(B, INPUT_DIM) landmark rows (see :mod:`asl.hands.features`) → class logits.

    Augmentation runs inside ``forward`` in training mode only (like dropout), so every
    datamodule, worker count and export path gets it without extra plumbing. The body is the one
    stage: ``trainable_stages=0`` trains the head alone.
    """

    def __init__(self, num_classes: int, features: Sequence[str] = FEATURES, mirror: str = "handedness",
                 use_z: bool = True, hidden: Sequence[int] = (256, 256), dropout: float = 0.2,
                 augment: dict[str, Any] | None = None, scale: str = "palm"):
        super().__init__()
        if not 0 <= dropout < 1:
            raise ASLError(f"model.dropout must be in [0, 1), got {dropout}")
        self.kinds, self.mirror, self.use_z, self.scale = list(features), mirror, bool(use_z), check_scale(scale)
        self.augment = check_augment(augment)
        layers: list[nn.Module] = [nn.BatchNorm1d(feature_dim(self.kinds, self.use_z))]
        width = feature_dim(self.kinds, self.use_z)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)
        self.num_features = width
        self.trainable_stages = 1

    @property
    def stages(self) -> nn.ModuleList:
        """The body as one stage; a view, so checkpoints keep their ``body.*`` keys."""
        return nn.ModuleList([self.body])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.augment:
            x = augment(x, **self.augment)
        return self.body(features(x, self.kinds, self.mirror, self.use_z, self.scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


@register_model("landmark_mlp")
def create_landmark_mlp(num_classes: int, pretrained: str | None = None, weights_path: str | None = None,
                        input_size: int | None = None, trainable_stages: int | str = "all",
                        **kwargs: Any) -> LandmarkMLP:
    """``model=landmark_mlp``; image-only options (input size, pretrained weights) do not apply."""
    if pretrained or weights_path:
        raise ASLError("model.pretrained/weights_path: landmark_mlp has no pretrained weights")
    try:
        model = LandmarkMLP(num_classes, **kwargs)
    except TypeError as e:
        raise ASLError(f"model: {e}") from None
    model.set_trainable_stages(trainable_stages)
    return model
