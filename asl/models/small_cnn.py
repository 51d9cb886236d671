"""The user's Keras stack (Conv 32-64-128-256-512) made sound: BatchNorm, ReLU, max-pooling per block."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from asl import ASLError
from asl.models.classifier import Classifier, build_classifier
from asl.models.registry import register_model


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


def small_cnn_stages(widths: Sequence[int] = (32, 64, 128, 256, 512), in_channels: int = 3) -> list[nn.Module]:
    """One stage per width; each halves the resolution (64 px in → 2×2 out with five stages)."""
    chans = [in_channels, *widths]
    return [conv_block(a, b) for a, b in zip(chans[:-1], chans[1:], strict=True)]


@register_model("small_cnn")
def create_small_cnn(num_classes: int, widths: Sequence[int] = (32, 64, 128, 256, 512), input_size: int = 64,
                     trainable_stages: int | str = "all", head: dict[str, Any] | None = None,
                     pretrained: str | None = None, weights_path: str | None = None) -> Classifier:
    """``model=small_cnn``: trained from scratch (there are no pretrained weights)."""
    if pretrained or weights_path:
        raise ASLError("model.pretrained/weights_path: small_cnn has no pretrained weights; train it from scratch")
    return build_classifier("small_cnn", small_cnn_stages(widths), num_classes, input_size, head, trainable_stages)
