"""The composed training config checked up front: every wrong type or value is one line naming the key,
the value and what is allowed, before any data is read (the groups' own checks come later, at build)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from difflib import get_close_matches
from typing import Any

import pytorch_lightning as pl
import torch
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


#: What ``trainer.*`` may hold: the arguments of ``pytorch_lightning.Trainer``.
TRAINER_ARGUMENTS = [p for p in inspect.signature(pl.Trainer.__init__).parameters if p != "self"]


def nearest_trainer_argument(key: str, configured: list[str]) -> str:
    """What to write instead of ``trainer.<key>``: the nearest ``pytorch_lightning.Trainer`` argument, with
    ``+`` where the trainer config does not set it (``configured``: the keys it sets)."""
    near = get_close_matches(key, TRAINER_ARGUMENTS, n=1)
    if not near:
        return "the trainer group takes pytorch_lightning.Trainer arguments only"
    if near[0] in configured:
        return f"did you mean trainer.{near[0]}?"
    return f"did you mean +trainer.{near[0]}? (a Trainer argument the trainer config does not set is added with +)"


def check_config(cfg: DictConfig) -> None:
    """Raise :class:`ASLError` for the first key whose value has the wrong type or is out of range, and for
    a key the Trainer does not take."""
    for key, (allowed, ok) in SCHEMA.items():
        value = OmegaConf.select(cfg, key, default=_ABSENT)
        if value is _ABSENT or (value is None and key.split(".")[-1] in ("eval_batch_size", "hand_blank")):
            continue
        if not ok(value):
            raise ASLError(f"{key}={value!r}: must be {allowed}")
    trainer = list(cfg.get("trainer") or {})
    unknown = sorted(set(trainer) - set(TRAINER_ARGUMENTS))
    if unknown:
        raise ASLError(f"trainer: unknown option(s) {unknown}; {nearest_trainer_argument(unknown[0], trainer)}")
    check_devices(OmegaConf.select(cfg, "trainer.accelerator", default="auto"),
                  OmegaConf.select(cfg, "trainer.devices", default="auto"))


def check_devices(accelerator: str, devices: Any, prefix: str = "trainer.") -> None:
    """Raise :class:`ASLError` when ``accelerator`` / ``devices`` ask for hardware this machine does not
    have, saying what it has: Lightning's own refusal is a traceback, and comes only after the data."""
    devices = OmegaConf.to_object(devices) if OmegaConf.is_config(devices) else devices
    if isinstance(devices, str) and devices.strip().lstrip("-").isdigit():
        devices = int(devices)
    cuda, mps = torch.cuda.device_count(), int(torch.backends.mps.is_available())
    gpus = {"gpu": cuda or mps, "cuda": cuda, "mps": mps, "auto": cuda or mps or None, "cpu": None}  # None: the CPU
    if accelerator not in gpus:  # tpu, hpu: Lightning's own checks
        return
    count = gpus[accelerator]
    if count == 0:
        use = "trainer=cpu (or trainer.accelerator=cpu)" if prefix == "trainer." else f"{prefix}accelerator=cpu"
        raise ASLError(f"{prefix}accelerator={accelerator}: no GPU is visible on this machine "
                       f"(torch.cuda.device_count() is {cuda}{', no MPS' if accelerator in ('gpu', 'mps') else ''}); use {use}")
    whole = isinstance(devices, int) and not isinstance(devices, bool)
    if devices == "auto" or (count is None and whole and devices >= 1):
        return
    if count is None:
        raise ASLError(f"{prefix}devices={devices!r}: on the CPU, devices is the number of processes: a whole number ≥ 1, or auto")
    if isinstance(devices, str):  # "0,1": device indices
        devices = [int(i) if i.strip().isdigit() else i for i in devices.split(",")]
    ok = (devices == -1 or 1 <= devices <= count) if whole else (
        isinstance(devices, list) and bool(devices) and all(isinstance(i, int) and 0 <= i < count for i in devices))
    if not ok:
        raise ASLError(f"{prefix}devices={devices!r}: this machine has {count} GPU(s) (indices 0–{count - 1}); "
                       f"use {prefix}devices={count} or fewer, a list of those indices, or auto")


_ABSENT = object()
