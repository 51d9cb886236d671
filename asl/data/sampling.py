"""What a training epoch draws, from (seed, epoch) alone: the shuffle order and the fixed-size epochs
of a curriculum budget. A run resumed from ``last.ckpt`` so sees the batches the uninterrupted run saw."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler


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


def repeat_to(ds, n: int, seed: int):
    """A copy of an image dataset with ``n`` items: each item ``n // len`` times, plus a seeded draw for the rest."""
    k, r = divmod(n, len(ds))
    pick = np.concatenate([np.tile(np.arange(len(ds)), k), np.random.default_rng(seed).choice(len(ds), r, replace=False)])
    out = copy.copy(ds)
    out.indices, out.labels = ds.indices[pick], ds.labels[pick]
    return out
