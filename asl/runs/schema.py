"""The composed training config checked up front: every wrong type or value is one line naming the key,
the value and what is allowed, before any data is read (the groups' own checks come later, at build)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from asl import ASLError
from asl.runs.self_train import are_shares


def _int(lo: int | None = None, hi: int | None = None) -> tuple[str, Callable[[Any], bool]]:
    what = "a whole number" + (f" ≥ {lo}" if lo is not None else "") + (f" ≤ {hi}" if hi is not None else "")
    return what, lambda v: isinstance(v, int) and not isinstance(v, bool) and (lo is None or v >= lo) and (hi is None or v <= hi)


def _float(lo: float | None = None, hi: float | None = None, open_lo: bool = False) -> tuple[str, Callable[[Any], bool]]:
    what = "a number" + (f" {'>' if open_lo else '≥'} {lo}" if lo is not None else "") + (f" ≤ {hi}" if hi is not None else "")
    return what, lambda v: (isinstance(v, int | float) and not isinstance(v, bool)
                            and (lo is None or (v > lo if open_lo else v >= lo)) and (hi is None or v <= hi))


def _one_of(*options: Any) -> tuple[str, Callable[[Any], bool]]:
    return f"one of {list(options)}", lambda v: v in options


def _bool() -> tuple[str, Callable[[Any], bool]]:
    return "true or false", lambda v: isinstance(v, bool)


def _shares() -> tuple[str, Callable[[Any], bool]]:
    return "a list of shares in (0, 1], e.g. [0.3,0.6,0.9] ([] = off)", lambda v: OmegaConf.is_list(v) and are_shares(v)


#: key → (what is allowed, check). Keys absent from a config are not checked.
SCHEMA: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "seed": _int(0),
    "label_smoothing": _float(0, 1),
    "budget.unit": _one_of("epochs", "steps", "images"),
    "trainer.max_epochs": _int(1),
    "trainer.precision": _one_of("32-true", "32", 32, "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true", 64),
    "trainer.accelerator": _one_of("auto", "cpu", "gpu", "cuda", "mps", "tpu"),
    "trainer.deterministic": _one_of(True, False, "warn"),
    "trainer.log_every_n_steps": _int(1),
    "eval_adapt_bn": _bool(),
    "eval_self_train": _shares(),
    "background_shift": _bool(),
    "data.batch_size": _int(1),
    "data.eval_batch_size": _int(1),
    "data.num_workers": _int(0),
    "data.pin_memory": _bool(),
    "data.cache": _bool(),
    "data.audit": _bool(),
    "data.hand_crop": _bool(),
    "data.hand_blank": _float(0, 1),
    "data.near_duplicate_distance": _int(0, 64),
    "data.unknown_folders": _one_of("error", "ignore"),
    "data.no_hand": _one_of("keep", "drop", "fail"),
    "model.input_size": _int(8),
    "model.backbone_lr_mult": _float(0),
    "model.channels_last": _bool(),
    "model.compile": _bool(),
    "optimizer.lr": _float(0, open_lo=True),
    "optimizer.weight_decay": _float(0),
    "optimizer.momentum": _float(0, 1),
    "scheduler.warmup_epochs": _float(0),
    "scheduler.step_epochs": _int(1),
    "scheduler.gamma": _float(0, 1, open_lo=True),
}


def check_config(cfg: DictConfig) -> None:
    """Raise :class:`ASLError` for the first key whose value has the wrong type or is out of range, and for
    a key the Trainer does not take."""
    for key, (allowed, ok) in SCHEMA.items():
        value = OmegaConf.select(cfg, key, default=_ABSENT)
        if value is _ABSENT or (value is None and key.split(".")[-1] in ("eval_batch_size", "hand_blank")):
            continue
        if not ok(value):
            raise ASLError(f"{key}={value!r}: must be {allowed}")
    unknown = sorted(set(cfg.get("trainer") or {}) - set(inspect.signature(pl.Trainer.__init__).parameters))
    if unknown:
        raise ASLError(f"trainer: unknown option(s) {unknown}; the trainer group takes pytorch_lightning.Trainer arguments only")


_ABSENT = object()
