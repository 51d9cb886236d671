"""The one LightningDataModule: discover → split → decode (cached) → albumentations → batches
(→ optional kornia augmentation of whole training batches on the training device).

It serves only the *active* classes for training and validation (a curriculum switches them on
stage by stage; by default all are active) and always tests on every class.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from asl import ASLError, resolve_cache_dir
from asl import audit as auditing
from asl.curriculum import repeat_to
from asl.data import synthetic
from asl.data.cache import ImageStore
from asl.data.folder import ImageTable, discover, resolve_classes
from asl.data.masks import mask_source
from asl.data.split import (
    SPLITS,
    check_spec,
    group_names,
    merge_groups,
    split_by_class,
    split_by_cluster,
    split_by_group,
)
from asl.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    DeviceAugment,
    build_pipeline,
    on_images,
)
from asl.hands.crop import HandCropStore
from asl.hands.detect import hand_results
from asl.hands.features import encode
from asl.reproduce import EpochShuffle

log = logging.getLogger(__name__)
INPUTS = ("image", "landmarks", "image+landmarks")  # what a model reads (model.inputs)
NO_HAND = ("keep", "drop", "fail")  # images without a detected hand: whole photo / zero landmarks, skip, error


class ImageDataset(Dataset):
    """(image tensor, label) for a subset of an :class:`ImageStore`; masks go through the transform too.

    The image tensor is what the transform makes: uint8 for training, normalised floats otherwise
    (see :func:`asl.data.transforms.build_pipeline`).

    With ``landmarks`` (one 64-float row per store image, see :mod:`asl.hands.features`) the input
    is the landmark row (``inputs="landmarks"``) or the pair (image, landmarks).
    """

    def __init__(self, store: ImageStore, indices: Sequence[int], labels: Sequence[int], transform,
                 landmarks: np.ndarray | None = None, inputs: str = "image"):
        self.store = store
        self.indices = np.asarray(indices, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.transform = transform
        self.landmarks, self.inputs = landmarks, inputs

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        k = int(self.indices[i])
        if self.inputs == "landmarks":
            return torch.from_numpy(self.landmarks[k]), int(self.labels[i])
        data = {"image": self.store.image(k)}
        mask = self.store.mask(k)
        if mask is not None:
            data["mask"] = mask
        out = self.transform(**data)
        if self.inputs == "image+landmarks":
            return (out["image"], torch.from_numpy(self.landmarks[k])), int(self.labels[i])
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
        cache_dir: str | None = None,
        unknown_folders: str = "error",
        train_transforms: list[dict] | None = None,
        eval_transforms: list[dict] | None = None,
        device_transforms: list[dict] | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        seed: int = 0,
        all_images_are: str | None = None,
        masks: str = "auto",
        mask_key: dict[str, Any] | None = None,
        background: dict[str, Any] | None = None,
        audit: bool = True,
        near_duplicate_distance: int = 6,
        inputs: str = "image",
        hand_crop: bool = False,
        no_hand: str = "keep",
        hands: dict[str, Any] | None = None,
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
        self.cache_dir = resolve_cache_dir(cache_dir) if cache else None
        self.unknown_folders = unknown_folders
        self.train_transforms = train_transforms
        self.eval_transforms = eval_transforms
        self.mean, self.std = tuple(mean), tuple(std)
        self.seed = seed
        self.all_images_are = all_images_are  # e.g. "test": evaluate a whole folder, no split
        self.masks, self.mask_key = masks, mask_key
        self.background = background  # transform spec applied first in training (asl.data.backgrounds)
        self.audit, self.near_duplicate_distance = audit, near_duplicate_distance
        self.audit_summary: dict[str, Any] | None = None  # set by setup() when audit is on
        if inputs not in INPUTS:
            raise ASLError(f"data.inputs (set by the model): {inputs!r} is not one of {INPUTS}")
        if no_hand not in NO_HAND:
            raise ASLError(f"data.no_hand: {no_hand!r} is not one of {NO_HAND}")
        self.inputs, self.hand_crop, self.no_hand = inputs, bool(hand_crop), no_hand
        if device_transforms and inputs == "landmarks":
            raise ASLError("data.device_transforms: this model reads landmarks only, there are no images to augment; "
                           "set data.device_transforms=null")
        self.device_tf = DeviceAugment(device_transforms) if device_transforms else None
        self.hands = dict(hands or {})  # source, margin and detector settings (asl.hands)
        self.landmarks: np.ndarray | None = None
        self.active_classes: list[int] = list(range(len(self.classes)))
        self.class_schedule: Callable[[int], list[int]] | None = None  # epoch → active classes (a curriculum plan)
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
            s.get("cache_dir", self.cache_dir or resolve_cache_dir()), per_class=s["per_class"],
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
        results, splits = self._find_hands(root, table, splits)
        mask_paths, mask_from, mask_tag = mask_source(self.masks, table, self.mask_key)
        if self.hand_crop:
            self.store = HandCropStore(table.paths, self.image_size, results, float(self.hands.get("margin", 0.2)),
                                       mask_paths, self.cache_dir, mask_from=mask_from, mask_tag=mask_tag)
        else:
            self.store = ImageStore(table.paths, self.image_size, mask_paths, self.cache_dir,
                                    mask_from=mask_from, mask_tag=mask_tag)
        if results is not None:
            self.landmarks = np.stack([encode(r and r["landmarks"], r and r["handedness"]) for r in results])
        valid = [i for i in range(len(table.paths)) if i not in self.store.unreadable]
        table.drop(self.store.unreadable)
        self.table = table
        self.store_index = np.asarray(valid, dtype=np.int64)
        self.labels = np.asarray(table.labels, dtype=np.int64)
        self.audit = self.audit and not self.all_images_are  # nothing to audit when every image is test
        wants_hashes = self.audit or (self.split_cfg.get("dedupe") and splits is None and not self.all_images_are)
        self.facts = auditing.file_facts(self.store, self.cache_dir) if wants_hashes else None
        if splits is not None:
            self.splits = np.asarray([splits[i] for i in valid], dtype=object)
        else:
            self.splits = self._split(table)
        train_specs = ([self.background] if self.background else []) + list(self.train_transforms or [])
        # Training images leave the workers as uint8; the model normalises them on its device.
        self.train_tf = build_pipeline(train_specs, self.image_size, self.mean, self.std, seed=self.seed, normalize=False)
        self.eval_tf = build_pipeline(self.eval_transforms, self.image_size, self.mean, self.std, seed=self.seed)
        if self.audit:
            self.audit_summary = auditing.audit(
                self.store.paths, self.labels, self.classes, self.splits, self.facts, self.store_index,
                self.store.unreadable, self.near_duplicate_distance, root)
            log.info("Data audit:\n%s", auditing.describe(self.audit_summary))
        counts = {s: int((self.splits == s).sum()) for s in SPLITS}
        log.info("Data: %s, %d classes, %d images → %s", root, len(self.classes), len(self.labels), counts)

    def _find_hands(self, root: Path, table: ImageTable, splits: list[str] | None):
        """Each image's hand (keypoints.csv or the cached detector) when crops or landmarks are
        wanted; applies ``no_hand``: dropped images go to skipped_files.csv with the reason."""
        if not self.hand_crop and self.inputs == "image":
            return None, splits
        settings = {k: v for k, v in self.hands.items() if k not in ("source", "margin")}
        results = hand_results(root, table.paths, [table.relative(i) for i in range(len(table.paths))],
                               self.hands.get("source", "auto"), settings, self.cache_dir)
        missing = {i: "no hand detected (data.no_hand=drop)" for i, r in enumerate(results) if r is None}
        log.info("Hands found in %d of %d images", len(results) - len(missing), len(results))
        if missing and self.no_hand == "fail":
            files = ", ".join(table.relative(i) for i in list(missing)[:5])
            raise ASLError(f"data.no_hand=fail: no hand found in {len(missing)} image(s), e.g. {files}. "
                           f"Use data.no_hand=drop (listed in skipped_files.csv) or keep.")
        if missing and self.no_hand == "drop":
            keep = [i for i in range(len(results)) if i not in missing]
            table.drop(missing, what="hand-less")
            results = [results[i] for i in keep]
            splits = [splits[i] for i in keep] if splits is not None else None
        return results, splits

    def _split(self, table: ImageTable) -> np.ndarray:
        if self.all_images_are:
            return np.full(len(table.paths), self.all_images_are, dtype=object)
        if table.presplit is not None:
            return np.asarray(table.presplit, dtype=object)
        cfg = self.split_cfg
        seed = cfg.get("seed", self.seed)
        fractions = cfg.get("fractions") or [0.5, 0.25, 0.25]
        near = None
        if cfg.get("dedupe"):
            if cfg.get("counts") is not None:
                raise ASLError("data.split.dedupe: needs data.split.fractions (clusters cannot fill exact counts); set counts=null")
            hashes = self.facts["phash"][self.store_index]
            pairs = auditing.same_class_pairs(auditing.near_pairs(hashes, self.near_duplicate_distance), self.labels)
            near = auditing.clusters(len(hashes), pairs)
        if cfg.get("group_by"):
            names = [table.relative(i) for i in range(len(table.paths))]
            groups = np.asarray(group_names(names, cfg["group_by"]), dtype=object)
            if near is not None:  # a component of groups linked by near-duplicates is named by its first group
                merged = merge_groups(groups, near)
                first = {m: groups[i] for i, m in reversed(list(enumerate(merged)))}
                groups = np.asarray([first[m] for m in merged], dtype=object)
            return split_by_group(groups, fractions, seed, cfg.get("group_assign"))
        if near is not None:
            return split_by_cluster(table.labels, near, self.classes, fractions, seed)
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

    def write_audit(self, folder: str | os.PathLike) -> dict[str, Any] | None:
        """``audit.json`` and ``near_duplicates.png`` (val/test images beside their train twins)."""
        if self.audit_summary is None:
            return None
        folder = Path(folder)
        auditing.write_report(self.audit_summary, folder)
        examples = auditing.twin_examples(self.facts, self.store_index, self.splits, self.labels, self.near_duplicate_distance)
        names = [self.table.relative(i) for i in range(len(self.labels))]
        auditing.save_pairs_png(self.store, self.store_index, examples, names, self.splits, folder / "near_duplicates.png")
        return self.audit_summary

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
        return ImageDataset(self.store, self.store_index[rows], self.labels[rows], tf, self.landmarks, self.inputs)

    def _loader(self, ds: ImageDataset, train: bool) -> DataLoader:
        if len(ds) == 0:
            raise ASLError("a data split is empty: check data.split (counts/fractions) and data.classes")
        # Training order depends on (seed, epoch) only, so a resumed run sees the same batches.
        sampler = EpochShuffle(len(ds), self.seed, self.trainer.current_epoch if self.trainer else 0) if train else None
        return DataLoader(
            ds,
            batch_size=self.batch_size if train else self.eval_batch_size,
            sampler=sampler,
            generator=sampler.generator if sampler else None,
            drop_last=train and len(ds) > self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=False,
            worker_init_fn=seed_worker_transform if self.num_workers > 0 else None,
        )

    def train_dataloader(self) -> DataLoader:
        epoch = self.trainer.current_epoch if self.trainer else 0
        if self.class_schedule is not None:
            self.set_active_classes(self.class_schedule(epoch))
        ds = self.dataset("train", active_only=True)
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
        """Lightning's hook, once the batch is on the training device: augment training batches there."""
        if self.device_tf is not None and self.trainer is not None and self.trainer.training:
            x, y = batch
            return self.augment_on_device(x), y
        return batch
