"""The one LightningDataModule: discover → split → hands → decode (cached) → albumentations →
batches (→ optional kornia augmentation of whole training batches on the training device).

It serves only the *active* classes for training (a curriculum plan switches them on stage by
stage; by default all are active) and validates and tests on every class. The pieces it joins
live below it: :mod:`asl.data` (folders, splits, duplicates, caches, transforms, sampling) and
:mod:`asl.hands` (the hand stage and the input contract's preparation).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from asl import ASLError, resolve_cache_dir
from asl.data import duplicates, synthetic
from asl.data.cache import ImageStore
from asl.data.folder import ImageTable, discover, resolve_classes
from asl.data.masks import mask_source
from asl.data.sampling import EpochShuffle, repeat_to
from asl.data.split import SPLIT_KEYS, SPLITS, check_spec, make_splits, read_manifest
from asl.data.transforms import DeviceAugment, on_images
from asl.hands.features import present
from asl.hands.prepare import assemble, input_transform
from asl.hands.stage import HandStage
from asl.inputs import InputSpec

log = logging.getLogger(__name__)

#: The datamodule's argument groups: each a dict of these ``data.*`` keys (asl/conf/data/folder.yaml), with defaults.
GROUPS: dict[str, dict[str, Any]] = {
    "source": {"root": None, "synthetic": None, "classes": None, "unknown_folders": "error"},
    "loader": {"batch_size": 64, "eval_batch_size": None, "num_workers": 0, "pin_memory": False, "detector_workers": None},
    "augment": {"background": None, "train_transforms": None, "device_transforms": None, "eval_transforms": None},
    "masks": {"masks": "auto", "mask_key": None},
    "audit": {"audit": True, "near_duplicate_distance": 6},
}
#: ``data.*`` keys that belong to the input contract (:func:`asl.inputs.resolve_input_spec`) or the cache.
OTHER_KEYS = ("split", "hand_crop", "hand_blank", "no_hand", "hands", "cache", "cache_dir")


def _group(name: str, given: Mapping[str, Any] | None) -> dict[str, Any]:
    given = dict(given or {})
    unknown = sorted(set(given) - set(GROUPS[name]))
    if unknown:
        raise ASLError(f"data: unknown option(s) {unknown}; known: {sorted(GROUPS[name])}")
    return {**GROUPS[name], **given}


class ImageDataset(Dataset):
    """(model input, label) for a subset of an :class:`ImageStore`; masks go through the transform too.

    The image tensor is what the transform makes: uint8 for training, normalised floats otherwise.
    With ``landmarks`` (one row per store image, asl.hands.features) the input follows ``spec.inputs``. With
    ``features`` (one row per store image: a frozen backbone's output, :mod:`asl.lit.features`) the
    input is that row, and no image is read.
    """

    def __init__(self, store: ImageStore, indices: Sequence[int], labels: Sequence[int], transform,
                 landmarks: np.ndarray | None, spec: InputSpec, features: np.ndarray | None = None):
        self.store = store
        self.indices = np.asarray(indices, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.transform, self.landmarks, self.spec, self.features = transform, landmarks, spec, features

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        k = int(self.indices[i])
        if self.features is not None:
            return torch.from_numpy(np.array(self.features[k])), int(self.labels[i])
        marks = torch.from_numpy(self.landmarks[k]) if self.landmarks is not None else None
        if self.spec.inputs == "landmarks":
            return marks, int(self.labels[i])
        data = {"image": self.store.image(k)}
        mask = self.store.mask(k)
        if mask is not None:
            data["mask"] = mask
        return assemble(self.transform(**data)["image"], marks, self.spec), int(self.labels[i])


def seed_worker_transform(worker_id: int) -> None:
    """Give each dataloader worker its own augmentation stream, derived from torch's worker seed
    (itself drawn from the seeded main process), so augmentation is reproducible and not repeated."""
    info = get_worker_info()
    info.dataset.transform.set_random_seed(info.seed % 2**32)


class ASLDataModule(pl.LightningDataModule):
    """Photos (or the synthetic set) → per-class train/val/test split → dataloaders.

    Args: ``spec`` (what the model reads), then the groups of ``data.*`` keys in :data:`GROUPS`
    (see :meth:`from_config`), ``split`` (``data.split``), ``cache_dir`` (None: no cache),
    ``seed``, and ``evaluate_all`` (every image is a test image: ``asl-eval`` on a folder).
    """

    def __init__(self, spec: InputSpec, source: Mapping[str, Any], split: Mapping[str, Any] | None = None,
                 loader: Mapping[str, Any] | None = None, augment: Mapping[str, Any] | None = None,
                 masks: Mapping[str, Any] | None = None, audit: Mapping[str, Any] | None = None,
                 cache_dir: str | None = None, seed: int = 0, evaluate_all: bool = False):
        super().__init__()
        self.spec, self.seed, self.evaluate_all, self.cache_dir = spec, seed, evaluate_all, cache_dir
        self.source, self.loader = _group("source", source), _group("loader", loader)
        self.augment, self.masks, self.audit = _group("augment", augment), _group("masks", masks), _group("audit", audit)
        if self.source["root"] is None and self.source["synthetic"] is None:
            raise ASLError("data.root is required: the folder of your photos, e.g. data=folder data.root=/path/to/photos "
                           "(root/<LETTER>/<image>); or use data=synthetic.")
        self.classes = resolve_classes(self.source["classes"])
        self.split_cfg = dict(split or {"fractions": [0.5, 0.25, 0.25]})
        unknown = sorted(set(self.split_cfg) - set(SPLIT_KEYS))
        if unknown:
            raise ASLError(f"data.split: unknown option(s) {unknown}; known: {list(SPLIT_KEYS)}")
        if not self.split_cfg.get("manifest") and not evaluate_all:
            check_spec(self.split_cfg.get("counts"), self.split_cfg.get("fractions"))
        self.batch_size = int(self.loader["batch_size"])
        self.eval_batch_size = int(self.loader["eval_batch_size"] or self.batch_size)
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ASLError(f"data.batch_size and data.eval_batch_size must be positive, got {self.batch_size}, {self.eval_batch_size}")
        device_tf = self.augment["device_transforms"]
        if device_tf and spec.inputs == "landmarks":
            raise ASLError("data.device_transforms: this model reads landmarks only, there are no images to augment; "
                           "set data.device_transforms=null")
        self.device_tf = DeviceAugment(device_tf) if device_tf else None
        if spec.hand_blank is not None and self.augment["background"]:
            raise ASLError("data.hand_blank paints the background out, so data.background has none to replace: "
                           "set data/background=none or data.hand_blank=null")
        self.hands = HandStage(spec, cache_dir, self.loader["detector_workers"])
        self.landmarks: np.ndarray | None = None
        self.features: np.ndarray | None = None  # cached frozen features, one row per store image (asl.lit.features)
        self.class_schedule: Callable[[int], list[int]] | None = None  # epoch → active classes (the curriculum plan)
        self.epoch_images: int | None = None  # fixed training images per epoch (curriculum budgets); None = one pass
        self.audit_summary: dict[str, Any] | None = None  # set by setup() when the audit is on
        self.table: ImageTable | None = None

    @classmethod
    def from_config(cls, data: Mapping[str, Any], spec: InputSpec, seed: int, **overrides: Any) -> ASLDataModule:
        """From a composed ``data`` config (plain dict): its flat keys sorted into the argument groups."""
        data = dict(data)
        unknown = sorted(set(data) - {k for g in GROUPS.values() for k in g} - set(OTHER_KEYS))
        if unknown:
            raise ASLError(f"data: unknown option(s) {unknown}")
        groups = {g: {k: data[k] for k in keys if k in data} for g, keys in GROUPS.items()}
        groups["loader"]["detector_workers"] = (data.get("hands") or {}).get("workers")  # data.hands.workers
        cache_dir = resolve_cache_dir(data.get("cache_dir")) if data.get("cache", True) else None
        return cls(spec, split=data.get("split"), cache_dir=cache_dir, seed=seed, **{**groups, **overrides})

    # -- data ------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        self.data_root()  # renders the synthetic set once, in the main process

    def data_root(self) -> Path:
        if self.source["root"] is not None:
            return Path(self.source["root"]).expanduser()
        s = self.source["synthetic"]
        return synthetic.generate(s.get("cache_dir", self.cache_dir or resolve_cache_dir()), per_class=s["per_class"],
                                  image_size=s["image_size"], seed=s["seed"], classes=self.classes)

    def setup(self, stage: str | None = None) -> None:
        if self.table is not None:
            return
        root = self.data_root()
        manifest = self.split_cfg.get("manifest")
        if manifest:
            table, splits = read_manifest(root, Path(manifest), self.classes)
        else:
            table = discover(root, self.classes, self.source["unknown_folders"], allow_missing_classes=self.evaluate_all)
            splits = None
        splits = self.hands.find(root, table, splits)
        self.store = self.hands.store(table.paths, *mask_source(self.masks["masks"], table, self.masks["mask_key"]))
        self.landmarks = self.hands.landmarks()
        valid = [i for i in range(len(table.paths)) if i not in self.store.unreadable]
        table.drop(self.store.unreadable)
        self.table = table
        self.store_index = np.asarray(valid, dtype=np.int64)
        self.labels = np.asarray(table.labels, dtype=np.int64)
        audit = self.audit["audit"] and not self.evaluate_all  # nothing to audit when every image is test
        dedupe = self.split_cfg.get("dedupe") and splits is None and not self.evaluate_all
        self.facts = duplicates.file_facts(self.store, self.cache_dir) if audit or dedupe else None
        if splits is not None:
            self.splits = np.asarray([splits[i] for i in valid], dtype=object)
        else:
            self.splits = self._split(table, dedupe)
        augment = self.augment
        train_specs = ([augment["background"]] if augment["background"] else []) + list(augment["train_transforms"] or [])
        # Training images leave the workers as uint8; the model normalises them on its device.
        self.train_tf = input_transform(self.spec, train_specs, normalize=False, seed=self.seed)
        self.eval_tf = input_transform(self.spec, augment["eval_transforms"], seed=self.seed)
        if audit:
            self.audit_summary = duplicates.audit(self.store.paths, self.labels, self.classes, self.splits, self.facts,
                                                  self.store_index, self.store.unreadable,
                                                  self.audit["near_duplicate_distance"], root)
        counts = {s: int((self.splits == s).sum()) for s in SPLITS}
        log.info("Data: %s, %d classes, %d images → %s", root, len(self.classes), len(self.labels), counts)

    def _split(self, table: ImageTable, dedupe: bool) -> np.ndarray:
        if self.evaluate_all:
            return np.full(len(table.paths), "test", dtype=object)
        if table.presplit is not None:
            return np.asarray(table.presplit, dtype=object)
        near = None
        if dedupe:
            if self.split_cfg.get("counts") is not None:
                raise ASLError("data.split.dedupe: needs data.split.fractions (clusters cannot fill exact counts); set counts=null")
            near = duplicates.near_clusters(self.facts["phash"][self.store_index], self.labels,
                                            self.audit["near_duplicate_distance"])
        names = [table.relative(i) for i in range(len(table.paths))]
        return make_splits(self.labels, names, self.classes, self.split_cfg, self.seed, near)

    def hand_found(self, split: str) -> np.ndarray | None:
        """Per image of ``split`` (in loader order): whether a hand was detected; None when the model uses no hands."""
        if self.landmarks is None:
            return None
        return present(torch.from_numpy(self.landmarks[self.store_index[self.indices(split)]])).numpy()

    def dropped_without_hand(self, split: str) -> int:
        """Photos of ``split`` left out for want of a hand (``data.no_hand=drop``). Photos dropped before a
        training run split its data belong to no split (they are in skipped_files.csv); for
        ``evaluate_all`` every dropped photo was a test photo."""
        return sum(s == split or (s is None and self.evaluate_all) for s in self.hands.dropped_splits)

    def relative_names(self) -> list[str]:
        """Every image's path relative to the data root (``splits.csv``'s ``file`` column)."""
        return [self.table.relative(i) for i in range(len(self.labels))]

    # -- loaders ---------------------------------------------------------------------------
    def indices(self, split: str, classes: Sequence[int] | None = None) -> np.ndarray:
        """Rows of ``split``, optionally only of these class indices."""
        keep = self.splits == split
        if classes is not None:
            keep &= np.isin(self.labels, list(classes))
        return np.flatnonzero(keep)

    def dataset(self, split: str, classes: Sequence[int] | None = None, train_transform: bool | None = None) -> ImageDataset:
        rows = self.indices(split, classes)
        tf = self.train_tf if (train_transform if train_transform is not None else split == "train") else self.eval_tf
        return ImageDataset(self.store, self.store_index[rows], self.labels[rows], tf, self.landmarks, self.spec,
                            self.features)

    def _loader(self, ds: ImageDataset, train: bool) -> DataLoader:
        if len(ds) == 0:
            raise ASLError("a data split is empty: check data.split (counts/fractions) and data.classes")
        # A cached feature row is a memory copy: workers would only add start-up time (and pickle the array).
        workers = int(self.loader["num_workers"]) if self.features is None else 0
        # Training order depends on (seed, epoch) only, so a resumed run sees the same batches.
        sampler = EpochShuffle(len(ds), self.seed, self.next_epoch()) if train else None
        return DataLoader(
            ds,
            batch_size=self.batch_size if train else self.eval_batch_size,
            sampler=sampler,
            generator=sampler.generator if sampler else None,
            drop_last=train and len(ds) > self.batch_size,
            num_workers=workers,
            pin_memory=bool(self.loader["pin_memory"]),
            persistent_workers=False,
            worker_init_fn=seed_worker_transform if workers > 0 else None,
        )

    def next_epoch(self) -> int:
        """The epoch the training loader is built for. On a resume from a checkpoint written at an epoch's
        end, ``trainer.current_epoch`` still names the finished epoch while the loop runs the next one, and
        loader workers draw their indices and seeds as soon as the loader is iterated, before Lightning's
        ``set_epoch``: so the epoch comes from the loop's own count of epochs begun."""
        return self.trainer.fit_loop.epoch_progress.current.processed if self.trainer else 0

    def train_dataloader(self) -> DataLoader:
        epoch = self.next_epoch()
        ds = self.dataset("train", self.class_schedule(epoch) if self.class_schedule else None)
        if self.epoch_images and len(ds):  # as many images per epoch whatever classes are active (curriculum)
            ds = repeat_to(ds, self.epoch_images, self.seed * 1000 + epoch)
        return self._loader(ds, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.dataset("val"), train=False)  # all classes: the module also scores the active ones

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.dataset("test"), train=False)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()

    def augment_on_device(self, x: torch.Tensor | tuple | list) -> torch.Tensor | tuple | list:
        """``data.device_transforms`` on a training batch's images (landmarks pass unchanged)."""
        return on_images(self.device_tf, x) if self.device_tf is not None else x

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Lightning's hook, once the batch is on the training device: augment training batches there
        ((inputs, labels); the layer summary's example input, asl.lit.summary, passes as it is)."""
        if self.device_tf is not None and self.trainer is not None and self.trainer.training and \
                isinstance(batch, list | tuple) and len(batch) == 2:
            x, y = batch
            return self.augment_on_device(x), y
        return batch
