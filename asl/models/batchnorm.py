"""BatchNorm layers that come with pretrained weights: how they train (``model.pretrained_bn``).

Some weights files have batch norm folded into the convolutions (the shared MobileNetV2 file: every
BatchNorm is the identity, running mean 0 and variance 1 - eps). In eval mode the network is the
pretrained function; in train mode a BatchNorm divides by its batch's own statistics, which undoes
the folded scales, so fine-tuning as-is starts from a damaged network. Hence three modes:

* ``eval`` (default): the backbone's BatchNorms stay in eval mode while training: the loaded running
  statistics are used and kept, the affine weight and bias still learn. Sound for any weights.
* ``recalibrate``: before training, :func:`recalibrate_batchnorm` measures every BatchNorm's input
  statistics on training images and re-expresses it with them (same eval-mode function), so train-mode
  batch statistics start close to the pretrained function; then BatchNorms train as usual.
* ``train``: BatchNorms train as usual from the loaded statistics (torchvision's habit; wrong for
  folded weights).

Without loaded weights the option does nothing. Frozen stages keep their BatchNorms in eval mode in
every mode.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from asl import ASLError

PRETRAINED_BN = ("eval", "recalibrate", "train")


def pretrained_bn_mode(value: str, weights_loaded: bool) -> str | None:
    """Check ``model.pretrained_bn``; ``None`` when no weights were loaded (the option does nothing)."""
    if value not in PRETRAINED_BN:
        raise ASLError(f"model.pretrained_bn: {value!r} is not one of {PRETRAINED_BN}")
    return value if weights_loaded else None


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[Any]) -> int:
    """Give every BatchNorm of ``model`` its input's measured mean and variance, eval output unchanged.

    ``batches``: model inputs as ``model(batch)`` takes them (normalised float images on the model's
    device; a few hundred images in all). All statistics come from one pass in eval mode, which is
    sound because re-expressing one BatchNorm does not change what the next one sees. For running
    mean m, variance v, weight w, bias b and measured m', v': w' = w·√(v'+eps)/√(v+eps) keeps the
    scale s = w/√(v+eps), and b' = b + s·(m' - m) keeps the shift. Returns the number of BatchNorms.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    sums: dict[nn.Module, list[Any]] = {}  # sum, sum of squares, count per channel

    def measure(bn: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        x = inputs[0].detach().transpose(0, 1).reshape(inputs[0].shape[1], -1).double()  # (C, N·H·W)
        acc = sums.setdefault(bn, [0, 0, 0])
        acc[0] += x.sum(1)
        acc[1] += (x * x).sum(1)
        acc[2] += x.shape[1]

    was_training = model.training
    hooks = [bn.register_forward_pre_hook(measure) for bn in norms]
    try:
        model.eval()
        for batch in batches:
            model(batch)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    if len(sums) < len(norms):
        raise ValueError("recalibrate_batchnorm: no batches, or some BatchNorms never ran")
    for bn in norms:
        total, total_sq, n = sums[bn]
        mean = total / n
        var = (total_sq / n - mean * mean).clamp_min(0)
        old_mean, old_var = bn.running_mean.double(), bn.running_var.double()
        scale = bn.weight.double() / (old_var + bn.eps).sqrt()
        bn.bias.copy_(bn.bias.double() + scale * (mean - old_mean))
        bn.weight.copy_(scale * (var + bn.eps).sqrt())
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
    return len(norms)


@torch.no_grad()
def adapt_batchnorm(model: nn.Module, batches: Iterable[Any]) -> int:
    """AdaBN: replace every BatchNorm's running statistics by those of ``batches`` (unlabelled photos of
    a new setting), the learned weights untouched. The model is in eval mode afterwards.

    One pass with the BatchNorms in train mode and a cumulative average (``momentum=None``), the
    rest in eval mode (no dropout): each layer sees the previous ones already adapted. A batch of one
    is skipped (a BatchNorm cannot take statistics of a single value). Returns the number of BatchNorms.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        raise ASLError("adapt_bn: this model has no BatchNorm layer, there are no statistics to adapt")
    momenta = [bn.momentum for bn in norms]
    model.eval()
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    seen = 0
    try:
        for batch in batches:
            n = len(batch[0]) if isinstance(batch, tuple | list) else len(batch)
            if n > 1:
                model(batch)
                seen += n
    finally:
        for bn, m in zip(norms, momenta, strict=True):
            bn.momentum = m
        model.eval()
    if not seen:
        raise ASLError("adapt_bn: no batch of two or more photos to measure the statistics on")
    return len(norms)
