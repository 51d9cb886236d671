"""The one LightningDataModule: discover → split → decode (cached) → albumentations → batches.

It serves only the *active* classes for training and validation (a curriculum switches them on
stage by stage; by default all are active) and always tests on every class.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from asl import ASLError
from asl.curriculum import repeat_to
from asl.data import synthetic
from asl.data.cache import ImageStore
from asl.data.folder import ImageTable, discover, resolve_classes
from asl.data.masks import mask_source
from asl.data.split import SPLITS, check_spec, group_names, split_by_class, split_by_group
from asl.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_pipeline

log = logging.getLogger(__name__)


class ImageDataset(Dataset):
    """(image tensor, label) for a subset of an :class:`ImageStore`; masks go through the transform too."""

    def __init__(self, store: ImageStore, indices: Sequence[int], labels: Sequence[int], transform):
        self.store = store
        self.indices = np.asarray(indices, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        k = int(self.indices[i])
        data = {"image": self.store.image(k)}
        mask = self.store.mask(k)
        if mask is not None:
            data["mask"] = mask
        out = self.transform(**data)
        return out["image"], int(self.labels[i])


def seed_worker_transform(worker_id: int) -> None:
    """Give each dataloader worker its own augmentation stream, derived from torch's worker seed
    (itself drawn from the seeded main process), so augmentation is reproducible and not repeated."""
    info = get_worker_info()
    info.dataset.transform.set_random_seed(info.seed % 2**32)


class ASLDataModule(pl.LightningDataModule):
    """Photos (or the synthetic set) → per-class train/val/test split → dataloaders.

    Args mirror ``conf/data/*.yaml``; see the comments there.
    """

    def __init__(
        self,
        root: str | None = None,
        synthetic: dict[str, Any] | None = None,
        classes: str | list[str] | None = None,
        image_size: int = 64,
        split: dict[str, Any] | None = None,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        cache: bool = True,
        cache_dir: str = ".cache/asl",
        unknown_folders: str = "error",
        train_transforms: list[dict] | None = None,
        eval_transforms: list[dict] | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        seed: int = 0,
        all_images_are: str | None = None,
        masks: str = "auto",
        mask_key: dict[str, Any] | None = None,
        background: dict[str, Any] | None = None,
    ):
        super().__init__()
        if root is None and synthetic is None:
            raise ASLError("data.root: no photos given. Set data.root=/path/to/photos (root/<LETTER>/<image>) or use data=synthetic.")
        if image_size < 8:
            raise ASLError(f"data.image_size must be at least 8 pixels, got {image_size}")
        if batch_size < 1:
            raise ASLError(f"data.batch_size must be positive, got {batch_size}")
        self.root = root
        self.synthetic = dict(synthetic) if synthetic else None
        self.classes = resolve_classes(classes)
        self.image_size = image_size
        self.split_cfg = dict(split or {"fractions": [0.5, 0.25, 0.25]})
        if not self.split_cfg.get("manifest") and all_images_are is None:
            check_spec(self.split_cfg.get("counts"), self.split_cfg.get("fractions"))
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.cache_dir = cache_dir if cache else None
        self.unknown_folders = unknown_folders
        self.train_transforms = train_transforms
        self.eval_transforms = eval_transforms
        self.mean, self.std = tuple(mean), tuple(std)
        self.seed = seed
        self.all_images_are = all_images_are  # e.g. "test": evaluate a whole folder, no split
        self.masks, self.mask_key = masks, mask_key
        self.background = background  # transform spec applied first in training (asl.data.backgrounds)
        self.active_classes: list[int] = list(range(len(self.classes)))
        self.epoch_images: int | None = None  # fixed training images per epoch (curriculum budgets); None = one pass
        self.table: ImageTable | None = None

    # -- data ------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        self.data_root()  # renders the synthetic set once, in the main process

    def data_root(self) -> Path:
        if self.root is not None:
            return Path(self.root).expanduser()
        s = self.synthetic
        return synthetic.generate(
            s.get("cache_dir", self.cache_dir or ".cache/asl"), per_class=s["per_class"],
            image_size=s["image_size"], seed=s["seed"], classes=self.classes,
        )

    def setup(self, stage: str | None = None) -> None:
        if self.table is not None:
            return
        root = self.data_root()
        manifest = self.split_cfg.get("manifest")
        if manifest:
            table, splits = self._from_manifest(root, Path(manifest))
        else:
            table = discover(root, self.classes, self.unknown_folders,
                             allow_missing_classes=self.all_images_are is not None)
            splits = None
        mask_paths, mask_from, mask_tag = mask_source(self.masks, table, self.mask_key)
        self.store = ImageStore(table.paths, self.image_size, mask_paths, self.cache_dir,
                                mask_from=mask_from, mask_tag=mask_tag)
        valid = [i for i in range(len(table.paths)) if i not in self.store.unreadable]
        table.drop(self.store.unreadable)
        self.table = table
        self.store_index = np.asarray(valid, dtype=np.int64)
        self.labels = np.asarray(table.labels, dtype=np.int64)
        if splits is not None:
            self.splits = np.asarray([splits[i] for i in valid], dtype=object)
        else:
            self.splits = self._split(table)
        train_specs = ([self.background] if self.background else []) + list(self.train_transforms or [])
        self.train_tf = build_pipeline(train_specs, self.image_size, self.mean, self.std, seed=self.seed)
        self.eval_tf = build_pipeline(self.eval_transforms, self.image_size, self.mean, self.std, seed=self.seed)
        counts = {s: int((self.splits == s).sum()) for s in SPLITS}
        log.info("Data: %s, %d classes, %d images → %s", root, len(self.classes), len(self.labels), counts)

    def _split(self, table: ImageTable) -> np.ndarray:
        if self.all_images_are:
            return np.full(len(table.paths), self.all_images_are, dtype=object)
        if table.presplit is not None:
            return np.asarray(table.presplit, dtype=object)
        cfg = self.split_cfg
        seed = cfg.get("seed", self.seed)
        if cfg.get("group_by"):
            names = [table.relative(i) for i in range(len(table.paths))]
            groups = group_names(names, cfg["group_by"])
            fractions = cfg.get("fractions") or [0.5, 0.25, 0.25]
            return split_by_group(groups, fractions, seed, cfg.get("group_assign"))
        return split_by_class(table.labels, self.classes, cfg.get("counts"), cfg.get("fractions"), seed)

    def _from_manifest(self, root: Path, manifest: Path) -> tuple[ImageTable, list[str]]:
        """Rebuild exactly the images and split of an earlier run from its ``splits.csv``."""
        if not manifest.exists():
            raise ASLError(f"data.split.manifest: {manifest} does not exist")
        table = ImageTable(root=root, classes=self.classes)
        splits = []
        with open(manifest, newline="") as f:
            for row in csv.DictReader(f):
                if row["split"] not in SPLITS:
                    continue
                path = root / row["file"]
                if not path.exists():
                    raise ASLError(f"{manifest}: lists {row['file']}, which is missing under {root}. Point data.root at the run's photos.")
                if row["label"] not in self.classes:
                    raise ASLError(f"{manifest}: label {row['label']!r} is not in data.classes")
                table.paths.append(path)
                table.labels.append(self.classes.index(row["label"]))
                splits.append(row["split"])
        return table, splits

    def write_manifest(self, path: str | os.PathLike) -> None:
        """``splits.csv``: every image (relative to the data root) → its label and split."""
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["file", "label", "split"])
            for i in range(len(self.labels)):
                w.writerow([self.table.relative(i), self.classes[self.labels[i]], self.splits[i]])

    def write_skipped(self, path: str | os.PathLike) -> int:
        """``skipped_files.csv``: every file left out, and why. Returns how many."""
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["file", "reason"])
            w.writerows(self.table.skipped)
        return len(self.table.skipped)

    # -- curriculum ------------------------------------------------------------------------
    def set_active_classes(self, classes: Sequence[int]) -> None:
        """Serve only these class indices in train/val (dataloaders must be reloaded to take effect)."""
        self.active_classes = sorted(int(c) for c in classes)

    # -- loaders ---------------------------------------------------------------------------
    def indices(self, split: str, active_only: bool = False) -> np.ndarray:
        keep = self.splits == split
        if active_only:
            keep &= np.isin(self.labels, self.active_classes)
        return np.flatnonzero(keep)

    def dataset(self, split: str, active_only: bool = False, train_transform: bool | None = None) -> ImageDataset:
        rows = self.indices(split, active_only)
        tf = self.train_tf if (train_transform if train_transform is not None else split == "train") else self.eval_tf
        return ImageDataset(self.store, self.store_index[rows], self.labels[rows], tf)

    def _loader(self, ds: ImageDataset, train: bool) -> DataLoader:
        if len(ds) == 0:
            raise ASLError("a data split is empty: check data.split (counts/fractions) and data.classes")
        return DataLoader(
            ds,
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            drop_last=train and len(ds) > self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=False,
            worker_init_fn=seed_worker_transform if self.num_workers > 0 else None,
        )

    def train_dataloader(self) -> DataLoader:
        ds = self.dataset("train", active_only=True)
        if self.epoch_images and len(ds):  # as many images per epoch whatever classes are active (curriculum)
            ds = repeat_to(ds, self.epoch_images, self.seed * 1000 + (self.trainer.current_epoch if self.trainer else 0))
        return self._loader(ds, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.dataset("val"), train=False)  # all classes: the module also scores the active ones

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.dataset("test"), train=False)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()
