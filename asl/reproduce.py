"""Reproducible and resumable runs: per-epoch seeding, atomic checkpoints, re-running a run folder.

An epoch's randomness (shuffle, augmentation, dropout) is derived from (seed, epoch) alone, so a
run resumed from ``last.ckpt`` continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import yaml
from pytorch_lightning.plugins import TorchCheckpointIO
from torch.utils.data import Sampler

from asl import ASLError


def epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7_919) % 2**31


class EpochShuffle(Sampler[int]):
    """A shuffle that depends only on (seed, epoch); ``generator`` (the loader's) seeds worker streams.

    Lightning calls :meth:`set_epoch` before each epoch; the first epoch after a resume is set
    at construction, because its loader iterator is made before that call.
    """

    def __init__(self, n: int, seed: int, epoch: int = 0):
        self.n, self.seed = n, seed
        self.generator = torch.Generator()
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.generator.manual_seed(epoch_seed(self.seed, epoch))

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch) + 1)
        yield from torch.randperm(self.n, generator=g).tolist()


class EpochSeed(pl.Callback):
    """Reseed Python, NumPy, torch and the training augmentation at every epoch start from (seed, epoch)."""

    def __init__(self, seed: int):
        self.seed = seed

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        s = epoch_seed(self.seed, trainer.current_epoch) + 2 + trainer.global_rank
        random.seed(s)
        np.random.seed(s)
        torch.manual_seed(s)
        tf = getattr(trainer.datamodule, "train_tf", None)
        if tf is not None:
            tf.set_random_seed(s)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write a checkpoint to a temporary file beside it, then rename: a crash never leaves half a file."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        try:
            super().save_checkpoint(checkpoint, tmp, storage_options)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


# Hydra overrides that name where a run went or how it was launched, not what it computed.
_WHERE = ("hydra.run.dir", "hydra.sweep.dir", "hydra.sweep.subdir", "hydra/launcher", "hydra.launcher",
          "hydra.mode", "hydra.job.num", "hydra.job.id", "hydra.output_subdir", "ckpt_path")


def run_overrides(run_dir: str | os.PathLike) -> list[str]:
    """The command-line overrides (task and hydra.*) that made a run, from its ``.hydra/hydra.yaml``.

    A multirun job's file holds that job's own overrides (e.g. ``seed=1``), so one job re-runs alone.
    """
    run = Path(run_dir)
    hydra_file = run / ".hydra" / "hydra.yaml"
    if not hydra_file.exists():
        raise ASLError(f"{run}: not a run folder (no .hydra/hydra.yaml). Give the folder asl-train printed as 'run folder'.")
    h = yaml.safe_load(hydra_file.read_text())["hydra"]
    overrides = [*h["overrides"].get("hydra", []), *h["overrides"].get("task", [])]
    return [o for o in overrides if not o.lstrip("+~").split("=")[0].startswith(_WHERE)]


def reproduce_command(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                      resume: bool = False) -> list[str]:
    """asl-train arguments that re-run a run into ``out_dir`` (or resume it in its own folder)."""
    run = Path(run_dir).resolve()
    args = run_overrides(run)
    if resume:
        if not (run / "checkpoints" / "last.ckpt").exists():
            raise ASLError(f"{run}: no checkpoints/last.ckpt to resume from (the run stopped before its first epoch ended); re-run it instead.")
        return [*args, f"hydra.run.dir={run}", "ckpt_path=last"]
    out = Path(out_dir) if out_dir else run.parent / f"{run.name}_reproduced"
    return [*args, f"hydra.run.dir={out.resolve()}"]
