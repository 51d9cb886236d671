"""What every registered model provides, written down once.

The LightningModule builds its optimizer groups from ``head``, its unfreezing schedule calls
``set_trainable_stages``, Grad-CAM hooks ``stages``, and the batch-norm hook reads ``pretrained_bn``:
none of them may depend on which model it is.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class ASLModel(Protocol):
    """An ``nn.Module`` made of backbone ``stages`` (input side first) and a ``head``."""

    #: The backbone's stages: the unit of partial unfreezing; Grad-CAM reads their feature maps.
    stages: nn.ModuleList
    #: The parameters that always train (the optimizer's head group, at the full learning rate).
    head: nn.Module
    #: How many of the last stages currently train.
    trainable_stages: int
    #: How BatchNorms loaded with pretrained weights train: ``eval``, ``recalibrate`` or ``train``
    #: (see :mod:`asl.models.batchnorm`); ``None`` when no weights were loaded.
    pretrained_bn: str | None

    def set_trainable_stages(self, n: int | str) -> None:
        """Train the last ``n`` stages and the head (``all``: every stage; 0: the head only)."""

    def forward_features(self, x: Any) -> Any:
        """What the head reads (a fusion model: one feature tensor per branch)."""

    def forward(self, x: Any) -> torch.Tensor:
        """Class logits (a fusion model: log-probabilities), shape (B, num_classes)."""
