"""Curriculum learning at a fair budget: which classes are trained in which epoch, and the callback
that switches them.

A curriculum (``asl/conf/curriculum/*.yaml``) is a list of stages, each with its classes (a count of
letters taken from ``order``, an explicit list of letters, or ``all``) and its ``fraction`` of the
training budget. The budget (``budget.unit``: epochs | steps | images) is what two runs being
compared hold equal. For ``steps`` and ``images`` an epoch is a fixed number of training images
(drawn from the active classes only), so a 5-class epoch and a 24-class epoch cost the same and
stage boundaries fall on epoch boundaries, where Lightning can reload the dataloaders.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from asl import ASLError

log = logging.getLogger(__name__)
UNITS = ("epochs", "steps", "images")


@dataclass
class Stage:
    start_epoch: int      # first epoch of the stage
    classes: list[int]    # active class indices (sorted)


@dataclass
class Plan:
    """The resolved schedule: how many epochs, how big each epoch is, and the stages."""

    epochs: int
    epoch_images: int | None    # training images per epoch; None = one pass over the active classes' images
    batch_size: int
    stages: list[Stage]
    unit: str

    def stage_at(self, epoch: int) -> int:
        return max(i for i, s in enumerate(self.stages) if s.start_epoch <= epoch)

    def active_at(self, epoch: int) -> list[int]:
        return self.stages[self.stage_at(epoch)].classes

    def active_at_step(self, step: int) -> list[int]:
        """Classes active at optimizer step ``step`` (fixed-size epochs only: budget steps or images)."""
        if self.epoch_images is None:
            raise ValueError("epochs vary in size under budget.unit=epochs; use active_at(epoch)")
        return self.active_at(step // (self.epoch_images // self.batch_size))

    def total_steps(self, train_counts: np.ndarray) -> int:
        """Optimizer steps of the whole run (the LR schedule's length); ``train_counts``: training images per class."""
        if self.epoch_images is not None:
            return self.epochs * (self.epoch_images // self.batch_size)
        steps = 0
        for epoch in range(self.epochs):
            n = int(train_counts[self.active_at(epoch)].sum())
            steps += n // self.batch_size if n > self.batch_size else 1  # train loaders drop the last partial batch
        return steps

    def describe(self, class_names: list[str]) -> list[dict[str, Any]]:
        return [{"start_epoch": s.start_epoch, "classes": [class_names[c] for c in s.classes]} for s in self.stages]


def class_order(order: Any, class_names: list[str], seed: int) -> list[int]:
    """``alphabetical`` | ``random`` (a permutation drawn with ``seed``) | an explicit list of letters."""
    if order == "alphabetical":
        return sorted(range(len(class_names)), key=lambda c: class_names[c])
    if order == "random":
        return [int(c) for c in np.random.default_rng(seed).permutation(len(class_names))]
    if isinstance(order, list | tuple):
        return [letter_index(x, class_names, "curriculum.order") for x in order]
    raise ASLError(f"curriculum.order: {order!r} is not alphabetical, random or a list of letters")


def letter_index(letter: Any, class_names: list[str], key: str) -> int:
    if str(letter) not in class_names:
        raise ASLError(f"{key}: {letter!r} is not one of the classes {''.join(class_names)}")
    return class_names.index(str(letter))


def stage_classes(spec: Any, order: list[int], class_names: list[str], key: str) -> list[int]:
    """A stage's ``classes``: ``all``, a count (the first N of ``order``) or a list of letters."""
    if spec == "all":
        return list(range(len(class_names)))
    if isinstance(spec, int) and not isinstance(spec, bool):
        if not 1 <= spec <= len(order):
            raise ASLError(f"{key}: {spec} classes asked for, but the order has {len(order)} (1..{len(order)}, or all)")
        return sorted(order[:spec])
    if isinstance(spec, list | tuple) and spec:
        return sorted({letter_index(x, class_names, key) for x in spec})
    raise ASLError(f"{key}: {spec!r} is not a count, a list of letters or all")


def resolve_budget(budget: dict[str, Any], max_epochs: int, train_images: int, batch_size: int) -> tuple[int, int | None]:
    """(epochs, images per epoch) for a budget. ``size: null`` means ``max_epochs`` passes over all training images."""
    unit, size = budget.get("unit", "epochs"), budget.get("size")
    if unit not in UNITS:
        raise ASLError(f"budget.unit: {unit!r} is not one of {', '.join(UNITS)}")
    if size is not None and (not isinstance(size, int) or size < 1):
        raise ASLError(f"budget.size: expected a positive whole number of {unit} (or null), got {size!r}")
    if unit == "epochs":
        return (size or max_epochs), None
    full_epoch_steps = max(1, train_images // batch_size)
    if unit == "images":
        total_steps = (size // batch_size) if size else max_epochs * full_epoch_steps
    else:
        total_steps = size or max_epochs * full_epoch_steps
    if total_steps < 1:
        raise ASLError(f"budget.size: {size} images is less than one batch of data.batch_size={batch_size}")
    epochs = max(1, round(total_steps / full_epoch_steps))
    return epochs, (total_steps // epochs) * batch_size


def make_plan(curriculum: dict[str, Any], budget: dict[str, Any], class_names: list[str], max_epochs: int,
              train_images: int, batch_size: int, seed: int) -> Plan:
    """Turn the curriculum and budget configs into epochs, epoch size and stage start epochs."""
    epochs, epoch_images = resolve_budget(budget, max_epochs, train_images, batch_size)
    specs = list(curriculum.get("stages") or [])
    if not specs:
        return Plan(epochs, epoch_images, batch_size, [Stage(0, list(range(len(class_names))))], budget.get("unit", "epochs"))
    if len(specs) > epochs:
        raise ASLError(f"curriculum.stages: {len(specs)} stages need at least as many epochs; the budget gives {epochs}")
    order = class_order(curriculum.get("order", "alphabetical"), class_names, int(curriculum.get("seed", seed)))
    stages, done = [], 0.0
    for i, spec in enumerate(specs):
        key = f"curriculum.stages[{i}]"
        if not isinstance(spec, dict) or "classes" not in spec:
            raise ASLError(f"{key}: expected {{classes: ..., fraction: ...}}, got {spec!r}")
        start = 0 if i == 0 else min(max(round(done * epochs), stages[-1].start_epoch + 1), epochs - (len(specs) - i))
        stages.append(Stage(start, stage_classes(spec["classes"], order, class_names, f"{key}.classes")))
        fraction = spec.get("fraction")
        if fraction is None and i < len(specs) - 1:
            raise ASLError(f"{key}.fraction: every stage but the last needs its share of the budget (0..1)")
        done += float(fraction or 0)
        if done > 1 + 1e-9:
            raise ASLError(f"{key}.fraction: the stages' fractions add up to {done:g}, more than the whole budget (1)")
    return Plan(epochs, epoch_images, batch_size, stages, budget.get("unit", "epochs"))


class CurriculumCallback(pl.Callback):
    """Keeps the module's active classes on the plan's stage and logs images seen, wall time and the
    number of active classes. The datamodule reads its classes from the same plan whenever Lightning
    builds a training loader (every epoch), so a run resumed in a later stage gets that stage's data."""

    def __init__(self, plan: Plan, datamodule):
        self.plan, self.dm = plan, datamodule
        self.start = time.time()
        self.stage: int | None = None  # the stage last announced in the log

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = time.time()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        classes = self.plan.active_at(epoch)
        pl_module.set_active_classes(classes)
        if len(self.plan.stages) > 1 and self.plan.stage_at(epoch) != self.stage:
            self.stage = self.plan.stage_at(epoch)
            log.info("epoch %d: curriculum stage %d, %d active classes: %s", epoch, self.stage,
                     len(classes), "".join(self.dm.classes[c] for c in classes))

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        pl_module.log("progress/images_seen", pl_module.images_seen.float())
        pl_module.log("progress/wall_s", float(time.time() - self.start))
        pl_module.log("curriculum/active_classes", float(pl_module.active_mask.sum()))

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pl_module.set_active_classes(None)


def setup_curriculum(cfg: DictConfig, dm, module, trainer_kwargs: dict[str, Any]) -> tuple[CurriculumCallback, Plan]:
    """Resolve the plan for a set-up datamodule, size the trainer, epochs and LR schedule to it."""
    curriculum = OmegaConf.to_container(cfg.get("curriculum") or {}, resolve=True)
    budget = OmegaConf.to_container(cfg.get("budget") or {"unit": "epochs"}, resolve=True)
    train_counts = np.bincount(dm.labels[dm.indices("train")], minlength=len(dm.classes))
    plan = make_plan(curriculum, budget, dm.classes, int(trainer_kwargs.get("max_epochs") or 1),
                     int(train_counts.sum()), dm.batch_size, int(cfg.seed))
    trainer_kwargs.update(max_epochs=plan.epochs, max_steps=-1)
    if len(plan.stages) > 1 or plan.epoch_images:  # new stage, or a new draw to fill fixed-size epochs
        trainer_kwargs["reload_dataloaders_every_n_epochs"] = 1
    dm.epoch_images = plan.epoch_images
    dm.class_schedule = plan.active_at
    module.planned_steps = plan.total_steps(train_counts)
    if curriculum.get("stages"):  # without one every epoch trains every letter: nothing to announce
        stages = [f"from epoch {s.start_epoch}: " + (f"all {len(s.classes)} letters" if len(s.classes) == len(dm.classes)
                                                    else "".join(dm.classes[c] for c in s.classes)) for s in plan.stages]
        log.info("Budget: %d epochs of %s; curriculum %s", plan.epochs,
                 f"{plan.epoch_images} images" if plan.epoch_images else "the active classes' images", "; ".join(stages))
    return CurriculumCallback(plan, dm), plan
