"""The hand stage of the data pipeline, behind one interface for the datamodule: find each
photo's hand, apply ``data.no_hand``, and give the image store (hand crops or whole photos) and
the landmark rows."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from asl import ASLError
from asl.data.cache import ImageStore
from asl.data.folder import ImageTable
from asl.hands.crop import HandCropStore
from asl.hands.detect import hand_results
from asl.hands.prepare import landmark_row
from asl.inputs import InputSpec

log = logging.getLogger(__name__)


class HandStage:
    """``find`` once per data set, then ``store`` and ``landmarks`` (None when the model needs no hands)."""

    def __init__(self, spec: InputSpec, cache_dir: str | os.PathLike | None, workers: int | None = None):
        self.spec, self.cache_dir, self.workers = spec, cache_dir, workers  # workers: detector processes
        self.results: list[dict[str, Any] | None] | None = None
        self.dropped_splits: list[str | None] = []  # under no_hand=drop: each dropped photo's split (None: not split yet)

    def find(self, root: Path, table: ImageTable, splits: list[str] | None) -> list[str] | None:
        """Each image's hand (keypoints.csv or the cached detector) when crops or landmarks are wanted.

        Applies ``no_hand``: dropped images leave ``table`` (listed in skipped_files.csv with the
        reason) and ``splits``, which is returned.
        """
        if not self.spec.wants_hands:
            return splits
        failed: dict[int, str] = {}
        results = hand_results(root, table.paths, [table.relative(i) for i in range(len(table.paths))],
                               self.spec.hand_source, self.spec.detector, self.cache_dir, workers=self.workers, errors=failed)
        if failed:
            log.warning("The hand detector failed on %d photo(s), counted as misses: %s", len(failed),
                        "; ".join(f"{table.relative(i)}: {why}" for i, why in list(failed.items())[:3]))
        missing = {i: f"no hand detected (data.no_hand=drop){'; ' + failed[i] if i in failed else ''}"
                   for i, r in enumerate(results) if r is None}
        log.info("Hands found in %d of %d images", len(results) - len(missing), len(results))
        if missing and self.spec.no_hand == "fail":
            files = ", ".join(table.relative(i) for i in list(missing)[:5])
            raise ASLError(f"data.no_hand=fail: no hand found in {len(missing)} image(s), e.g. {files}. "
                           f"Use data.no_hand=drop (listed in skipped_files.csv) or keep.")
        if missing and self.spec.no_hand == "drop":
            keep = [i for i in range(len(results)) if i not in missing]
            self.dropped_splits = [splits[i] if splits is not None else None for i in missing]
            table.drop(missing, what="hand-less")
            results = [results[i] for i in keep]
            splits = [splits[i] for i in keep] if splits is not None else None
        self.results = results
        return splits

    def store(self, paths: list[Path], mask_paths: list[Path | None] | None,
              mask_from: Callable[[np.ndarray], np.ndarray] | None, mask_tag: str) -> ImageStore:
        """The decoded-image store: hand crops with ``data.hand_crop``, else whole photos."""
        if self.spec.hand_crop:
            return HandCropStore(paths, self.spec, self.results, mask_paths, self.cache_dir, mask_from=mask_from,
                                 mask_tag=mask_tag)
        return ImageStore(paths, self.spec.image_size, mask_paths, self.cache_dir, mask_from=mask_from, mask_tag=mask_tag)

    def landmarks(self) -> np.ndarray | None:
        """One landmark row per image (asl.hands.features) (zeros where no hand was found), or None without hands."""
        return None if self.results is None else np.stack([landmark_row(r) for r in self.results])
