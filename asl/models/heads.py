"""Classification heads over a backbone's last feature map (B, C, H, W)."""

from __future__ import annotations

from torch import nn

from asl import ASLError

HEADS = ("linear", "mlp")


def create_head(
    num_features: int,
    num_classes: int,
    feature_hw: tuple[int, int],
    type: str = "linear",
    pool: str = "avg",
    hidden: int = 512,
    dropout: float = 0.0,
) -> nn.Sequential:
    """``linear``: pool → dropout → Linear. ``mlp``: the user's Keras head, Dropout → Flatten →
    Dropout → Dense(hidden, relu) → Dense(num_classes); its L2 penalty is the optimizer's weight decay.

    ``pool``: ``avg`` (global average, any input size) or ``flatten`` (keeps the spatial layout,
    as Keras' Flatten does; fixes the input size).
    """
    if type not in HEADS:
        raise ASLError(f"model.head.type: {type!r} is not one of {HEADS}")
    if pool not in ("avg", "flatten"):
        raise ASLError(f"model.head.pool: {pool!r} is not 'avg' or 'flatten'")
    if not 0 <= dropout < 1:
        raise ASLError(f"model.head.dropout must be in [0, 1), got {dropout}")
    if pool == "avg":
        reduce, width = [nn.AdaptiveAvgPool2d(1), nn.Flatten()], num_features
    else:
        reduce, width = [nn.Flatten()], num_features * feature_hw[0] * feature_hw[1]
    if type == "linear":
        return nn.Sequential(*reduce, nn.Dropout(dropout), nn.Linear(width, num_classes))
    return nn.Sequential(
        nn.Dropout(dropout), *reduce, nn.Dropout(dropout),
        nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_classes),
    )
