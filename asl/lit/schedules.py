"""Learning-rate schedules per optimizer step, built by the LightningModule once the run's length is
known (``asl/conf/scheduler/*.yaml`` name them with ``_partial_: true``)."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from asl import ASLError


def warmup_cosine(optimizer: Optimizer, total_steps: int, steps_per_epoch: int, warmup_epochs: float = 0) -> LambdaLR:
    """Linear warm-up over ``warmup_epochs``, then cosine decay to zero at ``total_steps``."""
    if warmup_epochs < 0:
        raise ASLError(f"scheduler.warmup_epochs must be ≥ 0, got {warmup_epochs}")
    warmup = int(warmup_epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return LambdaLR(optimizer, factor)


def step_decay(optimizer: Optimizer, total_steps: int, steps_per_epoch: int, step_epochs: int = 10,
               gamma: float = 0.1) -> LambdaLR:
    """The learning rate times ``gamma`` every ``step_epochs`` epochs."""
    if step_epochs < 1 or not 0 < gamma <= 1:
        raise ASLError(f"scheduler: step_epochs must be ≥ 1 and gamma in (0, 1], got {step_epochs}, {gamma}")
    every = step_epochs * steps_per_epoch
    return LambdaLR(optimizer, lambda step: gamma ** (step // max(1, every)))
