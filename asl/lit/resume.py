"""What makes a run exactly resumable: per-epoch seeding and atomic checkpoints.

An epoch's randomness (shuffle, augmentation, dropout) is derived from (seed, epoch) alone, so a
run resumed from ``last.ckpt`` continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins import TorchCheckpointIO

from asl.data.sampling import epoch_seed


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
