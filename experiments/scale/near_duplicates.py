"""The audit's near-duplicate searches, before (all pairs) and now (asl.data.duplicates), on the same hashes.

    python experiments/scale/near_duplicates.py [--sizes 250 1000 2500] [--data FOLDER ...] [--cache /tmp/asl-scale/dups]

Random 64-bit hashes at each size × 24 letters (no near pairs: the index's best case, and the all-pairs
search's cost is the same whatever the hashes), and the real perceptual hashes of each ``--data`` photo
folder (root/<LETTER>/<image>, decoded at 64 px; hashed once into ``--cache``, or read from the caches
of experiments/scale/run.py when ``--cache`` is its cache folder). Both searches must
give the same pairs, clusters and nearest train twins; the script stops if they do not.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from asl.data import duplicates
from asl.inputs import InputSpec
from asl.lit.datamodule import ASLDataModule


# The searches as they were before the index (asl/data/duplicates.py at a5ededd), the baseline.
def all_pairs_before(hashes: np.ndarray, distance: int, chunk: int = 1024) -> np.ndarray:
    out = []
    for start in range(0, len(hashes), chunk):
        d = duplicates.hamming(hashes[start:start + chunk], hashes)
        i, j = np.nonzero(d <= distance)
        i += start
        keep = i < j
        out.append(np.stack([i[keep], j[keep]], 1))
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)


def nearest_train_before(hashes: np.ndarray, splits: np.ndarray, labels: np.ndarray,
                         chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    train = np.flatnonzero(splits == "train")
    dist = np.full(len(hashes), 255, dtype=np.uint8)
    twin = np.full(len(hashes), -1, dtype=np.int64)
    for start in range(0, len(hashes), chunk):
        d = duplicates.hamming(hashes[start:start + chunk], hashes[train])
        rows = np.arange(start, min(start + chunk, len(hashes)))
        d[(train[None, :] == rows[:, None]) | (labels[train][None, :] != labels[rows][:, None])] = 255
        k = d.argmin(1)
        dist[rows], twin[rows] = d[np.arange(len(rows)), k], train[k]
    return dist, twin


def timed(f: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    out = f()
    return out, time.perf_counter() - start


def compare(name: str, hashes: np.ndarray, labels: np.ndarray, distance: int) -> str:
    """One table row: seconds of each search before and now, and the pairs found (checked equal)."""
    rng = np.random.default_rng(0)
    splits = np.array(["train", "train", "val", "test"], dtype=object)[rng.integers(0, 4, len(hashes))]
    old_pairs, t_old_pairs = timed(lambda: all_pairs_before(hashes, distance))
    old_near, t_old_near = timed(lambda: nearest_train_before(hashes, splits, labels))
    pairs, t_pairs = timed(lambda: duplicates.near_pairs(hashes, distance))
    same, t_same = timed(lambda: duplicates.near_pairs(hashes, distance, labels))
    (dist, twin), t_near = timed(lambda: duplicates.nearest_train(hashes, splits, labels))
    assert np.array_equal(pairs, old_pairs), "near_pairs differs from all pairs"
    assert np.array_equal(same, duplicates.same_class_pairs(old_pairs, labels)), "within-letter pairs differ"
    assert np.array_equal(dist, old_near[0]) and np.array_equal(twin[dist < 255], old_near[1][dist < 255])
    return (f"| {name} | {len(hashes):,} | {t_old_pairs:.2f} | {t_pairs:.3f} | {t_same:.3f} | {t_old_near:.2f} | "
            f"{t_near:.3f} | {len(pairs):,} ({len(same):,}) |")


def folder_hashes(root: Path, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """The perceptual hashes and labels of a photo folder's readable images, as the audit computes them
    (decoded at 64 px; the caches of an earlier run in ``cache`` are reused)."""
    dm = ASLDataModule(InputSpec(image_size=64), source={"root": str(root), "unknown_folders": "ignore"},
                       audit={"audit": False}, cache_dir=str(cache))
    dm.setup()
    return duplicates.file_facts(dm.store, cache)["phash"][dm.store_index], dm.labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[250, 1000, 2500], help="photos per letter (random hashes)")
    ap.add_argument("--data", type=Path, nargs="*", default=[], help="photo folders whose real hashes to search")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/asl-scale/dups"))
    ap.add_argument("--distance", type=int, default=6)
    a = ap.parse_args()
    print(f"| hashes | images | all pairs before, s | near_pairs now, s | within letters now, s | "
          f"nearest train twin before, s | now, s | pairs within {a.distance} bits (same letter) |")
    print("|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for size in a.sizes:
        hashes = rng.integers(0, 2**64 - 1, 24 * size, dtype=np.uint64, endpoint=True)
        print(compare(f"random, {size}/letter", hashes, np.repeat(np.arange(24), size), a.distance), flush=True)
    for root in a.data:
        print(compare(root.name, *folder_hashes(root, a.cache), a.distance), flush=True)


if __name__ == "__main__":
    main()
