"""Assign every image to train / val / test: per class by counts or fractions, or by groups.

Deterministic from a seed. With ``group_by`` (a regex whose first group, or whole match, names a
group such as a signer or a video) every image of a group lands in one split, across classes,
so a test score measures unseen groups rather than near-copies of training images. With
``dedupe`` each cluster of near-duplicate images (see :mod:`asl.data.duplicates`) does the same.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from asl import ASLError
from asl.data.folder import ImageTable

SPLITS = ("train", "val", "test")


def check_spec(counts, fractions) -> None:
    if (counts is None) == (fractions is None):
        raise ASLError("data.split: give exactly one of counts (e.g. [1250,625,625]) or fractions (e.g. [0.5,0.25,0.25]); set the other to null")
    spec = counts if counts is not None else fractions
    if len(spec) != 3 or any(v < 0 for v in spec):
        raise ASLError(f"data.split: needs three non-negative numbers for train/val/test, got {list(spec)}")
    if fractions is not None and not 0.999 <= sum(fractions) <= 1.001:
        raise ASLError(f"data.split.fractions must sum to 1, got {list(fractions)} (sum {sum(fractions):.3f})")
    if spec[0] <= 0:
        raise ASLError("data.split: the train share must be positive")


def group_names(names: Sequence[str], group_by: str) -> list[str]:
    """The group of each file name under regex ``group_by`` (first capture group, else whole match)."""
    try:
        rx = re.compile(group_by)
    except re.error as e:
        raise ASLError(f"data.split.group_by: {group_by!r} is not a valid regex ({e})") from None
    out = []
    for name in names:
        m = rx.search(name)
        if m is None:
            raise ASLError(f"data.split.group_by: {group_by!r} does not match {name!r}; every file name must name its group.")
        out.append(m.group(1) if rx.groups else m.group(0))
    return out


def split_by_class(labels: Sequence[int], classes: Sequence[str], counts=None, fractions=None, seed: int = 0) -> np.ndarray:
    """Per class: shuffle under ``seed`` and cut by counts (exact) or fractions (rounded)."""
    check_spec(counts, fractions)
    labels = np.asarray(labels)
    out = np.empty(len(labels), dtype=object)
    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        n = len(idx)
        if counts is not None:
            n_train, n_val, n_test = (int(v) for v in counts)
            if n_train + n_val + n_test > n:
                raise ASLError(
                    f"class {name}: {n} images, too few for data.split.counts={list(counts)} "
                    f"(needs {n_train + n_val + n_test}). Use fewer counts or data.split.fractions."
                )
        else:
            n_val, n_test = round(n * fractions[1]), round(n * fractions[2])
            n_train = n - n_val - n_test
            if n_train < 1 or (fractions[1] > 0 and n_val < 1) or (fractions[2] > 0 and n_test < 1):
                raise ASLError(f"class {name}: {n} images are too few to split by fractions {list(fractions)}; add images.")
        out[idx[:n_train]] = "train"
        out[idx[n_train:n_train + n_val]] = "val"
        out[idx[n_train + n_val:n_train + n_val + n_test]] = "test"
        out[idx[n_train + n_val + n_test:]] = "unused"
    return out


def split_by_group(groups: Sequence[str], fractions=(0.5, 0.25, 0.25), seed: int = 0,
                   assign: dict[str, Sequence[str]] | None = None) -> np.ndarray:
    """Whole groups to splits: ``assign`` pins groups (e.g. {test: [hand5]}), the rest fill fractions greedily."""
    groups = np.asarray(groups, dtype=object)
    names, sizes = np.unique(groups, return_counts=True)
    target = np.asarray(fractions, dtype=float) * len(groups)
    filled = np.zeros(3)
    chosen: dict[str, str] = {}
    for split, pinned in (assign or {}).items():
        if split not in SPLITS:
            raise ASLError(f"data.split.group_assign: unknown split {split!r}; use train, val or test")
        for g in pinned:
            if str(g) not in set(names):
                raise ASLError(f"data.split.group_assign: no group {g!r}; groups found: {list(names)[:20]}")
            chosen[str(g)] = split
            filled[SPLITS.index(split)] += sizes[list(names).index(str(g))]
    rng = np.random.default_rng(seed)
    free = [i for i in rng.permutation(len(names)) if names[i] not in chosen]
    for i in sorted(free, key=lambda i: -sizes[i]):  # big groups first, random among equals
        if assign:
            s = 0  # with pinned groups, the others train
        else:
            s = int(np.argmax((target - filled) / np.maximum(target, 1e-9)))
        chosen[names[i]] = SPLITS[s]
        filled[s] += sizes[i]
    out = np.array([chosen[g] for g in groups], dtype=object)
    missing = [s for s, f in zip(SPLITS, fractions, strict=True) if f > 0 and s not in set(out)]
    if missing:
        raise ASLError(f"data.split.group_by: only {len(names)} group(s) {list(names)}; too few to fill {missing}. Use fewer splits or a finer group_by.")
    return out


def merge_groups(*labelings: Sequence) -> np.ndarray:
    """Join labelings (e.g. signer groups and near-duplicate clusters): images linked by any share an id."""
    n = len(labelings[0])
    rows, cols = [], []
    for labeling in labelings:
        _, first, inverse = np.unique(np.asarray(labeling), return_index=True, return_inverse=True)
        rows.append(np.arange(n))
        cols.append(first[inverse])  # link every image to the first image of its group
    graph = coo_matrix((np.ones(n * len(labelings)), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def split_by_cluster(labels: Sequence[int], clusters: Sequence[int], classes: Sequence[str],
                     fractions=(0.5, 0.25, 0.25), seed: int = 0) -> np.ndarray:
    """Per class, whole near-duplicate clusters to splits (a cluster never straddles splits).

    A cluster belongs to the class most of its images have; clusters are placed largest first
    (random among equals) into the split furthest below its share of that class.
    """
    labels, clusters = np.asarray(labels), np.asarray(clusters)
    ids, inverse, sizes = np.unique(clusters, return_inverse=True, return_counts=True)
    owner = np.array([np.bincount(labels[inverse == k]).argmax() for k in range(len(ids))])
    rng = np.random.default_rng(seed)
    chosen = np.empty(len(ids), dtype=object)
    for c, name in enumerate(classes):
        mine = np.flatnonzero(owner == c)
        mine = mine[rng.permutation(len(mine))]
        mine = mine[np.argsort(-sizes[mine], kind="stable")]
        target = np.asarray(fractions, dtype=float) * sizes[mine].sum()
        filled = np.zeros(3)
        for k in mine:
            s = int(np.argmax((target - filled) / np.maximum(target, 1e-9)))
            chosen[k], filled[s] = SPLITS[s], filled[s] + sizes[k]
        missing = [s for s, f, n in zip(SPLITS, fractions, filled, strict=True) if f > 0 and n == 0]
        if missing and len(mine):
            raise ASLError(
                f"class {name}: its {int(sizes[mine].sum())} images form only {len(mine)} near-duplicate cluster(s), "
                f"too few to fill {missing}. Lower data.near_duplicate_distance or set data.split.dedupe=false."
            )
    return chosen[inverse]


SPLIT_KEYS = ("counts", "fractions", "seed", "group_by", "group_assign", "dedupe", "manifest")


def make_splits(labels: np.ndarray, names: Sequence[str], classes: Sequence[str], cfg: dict, seed: int,
                near: np.ndarray | None = None) -> np.ndarray:
    """Every image's split under ``data.split`` (``cfg``): by groups, by near-duplicate clusters
    (``near``: a cluster id per image, given with ``dedupe``), or per class by counts or fractions."""
    seed = cfg.get("seed", seed)
    fractions = cfg.get("fractions") or [0.5, 0.25, 0.25]
    if cfg.get("group_by"):
        groups = np.asarray(group_names(names, cfg["group_by"]), dtype=object)
        if near is not None:  # a component of groups linked by near-duplicates is named by its first group
            merged = merge_groups(groups, near)
            first = {m: groups[i] for i, m in reversed(list(enumerate(merged)))}
            groups = np.asarray([first[m] for m in merged], dtype=object)
        return split_by_group(groups, fractions, seed, cfg.get("group_assign"))
    if near is not None:
        return split_by_cluster(labels, near, classes, fractions, seed)
    return split_by_class(labels, classes, cfg.get("counts"), cfg.get("fractions"), seed)


def read_manifest(root: Path, manifest: Path, classes: list[str]) -> tuple[ImageTable, list[str]]:
    """Exactly the images and split of an earlier run, from its ``splits.csv``."""
    if not manifest.exists():
        raise ASLError(f"data.split.manifest: {manifest} does not exist")
    table = ImageTable(root=root, classes=classes)
    splits = []
    with open(manifest, newline="") as f:
        for row in csv.DictReader(f):
            if row["split"] not in SPLITS:
                continue
            path = root / row["file"]
            if not path.exists():
                raise ASLError(f"{manifest}: lists {row['file']}, which is missing under {root}. Point data.root at the run's photos.")
            if row["label"] not in classes:
                raise ASLError(f"{manifest}: label {row['label']!r} is not in data.classes")
            table.paths.append(path)
            table.labels.append(classes.index(row["label"]))
            splits.append(row["split"])
    return table, splits
