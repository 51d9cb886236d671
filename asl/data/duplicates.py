"""Data audit: what is in a photo set, and how much of val/test has a near-twin in train.

Photo sets cut from videos or bursts hold near-identical frames; a random split puts twins on
both sides and the test score measures memory, not recognition. Exact duplicates are found by a
content hash (SHA-1 of the file), near-duplicates by a 64-bit perceptual hash (``imagehash.phash``)
within a Hamming distance. Hashes are cached beside the decoded images, under the same key.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import imagehash
import numpy as np
from PIL import Image
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from asl.data.cache import ImageStore, cache_key

log = logging.getLogger(__name__)
AUDIT_VERSION = 1


def file_facts(store: ImageStore, cache_dir: str | os.PathLike | None) -> dict[str, Any]:
    """Per stored image: SHA-1 of the file, perceptual hash of the decoded image, size and mode.

    Cached as ``audit-<key>.npz`` (same key as the image cache), so a re-run costs a file read.
    """
    cache = None
    if cache_dir is not None:
        key = cache_key(store.paths, store.size)
        cache = Path(cache_dir).expanduser() / f"audit-v{AUDIT_VERSION}-{store.size}px-{len(store.paths)}-{key}.npz"
        if cache.exists():
            with np.load(cache) as z:
                return {k: z[k] for k in z.files}
    n = len(store.paths)
    sha1 = np.full(n, "", dtype="<U40")
    phash = np.zeros(n, dtype=np.uint64)
    sizes = np.full(n, "", dtype="<U16")
    modes = np.full(n, "", dtype="<U8")
    for i, p in enumerate(store.paths):
        if i in store.unreadable:
            continue
        sha1[i] = hashlib.sha1(Path(p).read_bytes()).hexdigest()
        with Image.open(p) as im:  # reads the header only
            sizes[i], modes[i] = f"{im.width}x{im.height}", im.mode
        bits = imagehash.phash(Image.fromarray(store.image(i))).hash.flatten()
        phash[i] = np.packbits(bits).view(">u8")[0]
    facts = {"sha1": sha1, "phash": phash, "sizes": sizes, "modes": modes}
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + f".tmp{os.getpid()}.npz")
        np.savez(tmp, **facts)
        os.replace(tmp, cache)
    return facts


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Hamming distances between two vectors of 64-bit hashes (len(a) × len(b), uint8)."""
    return np.bitwise_count(a[:, None] ^ b[None, :]).astype(np.uint8)


def near_pairs(hashes: np.ndarray, distance: int, chunk: int = 1024) -> np.ndarray:
    """All pairs (i, j), i < j, whose hashes differ in at most ``distance`` bits, as an (m, 2) array."""
    out = []
    for start in range(0, len(hashes), chunk):
        d = hamming(hashes[start:start + chunk], hashes)
        i, j = np.nonzero(d <= distance)
        i += start
        keep = i < j
        out.append(np.stack([i[keep], j[keep]], 1))
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)


def clusters(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected components of the near-duplicate graph: a cluster id per image (transitive)."""
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def same_class_pairs(pairs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The pairs whose images share a label: only those are twins that leak an answer."""
    return pairs[labels[pairs[:, 0]] == labels[pairs[:, 1]]]


def nearest_train(hashes: np.ndarray, splits: np.ndarray, labels: np.ndarray,
                  chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """For every image: distance to, and index of, its closest train image of the same class (self excluded)."""
    train = np.flatnonzero(splits == "train")
    dist = np.full(len(hashes), 255, dtype=np.uint8)
    twin = np.full(len(hashes), -1, dtype=np.int64)
    if len(train) == 0:
        return dist, twin
    for start in range(0, len(hashes), chunk):
        d = hamming(hashes[start:start + chunk], hashes[train])
        rows = np.arange(start, min(start + chunk, len(hashes)))
        d[(train[None, :] == rows[:, None]) | (labels[train][None, :] != labels[rows][:, None])] = 255
        k = d.argmin(1)
        dist[rows], twin[rows] = d[np.arange(len(rows)), k], train[k]
    return dist, twin


def leak_rates(hashes: np.ndarray, splits: np.ndarray, labels: np.ndarray, distance: int) -> dict[str, Any]:
    """Share of val and test images with a same-class near-twin (≤ ``distance`` bits) in train."""
    dist, _ = nearest_train(hashes, splits, labels)
    out: dict[str, Any] = {}
    for s in ("val", "test"):
        m = splits == s
        n = int(m.sum())
        leaked = int((dist[m] <= distance).sum())
        out[s] = {"images": n, "with_train_twin": leaked, "leak_rate": round(leaked / n, 4) if n else None}
    return out


def audit(paths: Sequence[Path], labels: np.ndarray, classes: Sequence[str], splits: np.ndarray | None,
          facts: dict[str, np.ndarray], rows: np.ndarray, unreadable: dict[int, str], distance: int,
          root: Path | None = None) -> dict[str, Any]:
    """The audit summary (JSON-ready) of the readable images ``rows`` of ``facts``.

    ``labels``/``splits`` are per readable image; ``unreadable`` maps store index → reason.
    """
    sha1, phash = facts["sha1"][rows], facts["phash"][rows]
    rel = [str(Path(p).relative_to(root)) if root else str(p) for p in (paths[r] for r in rows)]
    by_sha: dict[str, list[int]] = {}
    for i, h in enumerate(sha1):
        by_sha.setdefault(h, []).append(i)
    exact = [g for g in by_sha.values() if len(g) > 1]
    all_pairs = near_pairs(phash, distance)
    pairs = same_class_pairs(all_pairs, labels)
    cid = clusters(len(rows), pairs)
    sizes = np.bincount(cid)
    multi = sizes[sizes > 1]
    cross_class = len(all_pairs) - len(pairs)
    summary: dict[str, Any] = {
        "images": len(rows),
        "class_counts": {c: int((labels == k).sum()) for k, c in enumerate(classes)},
        "image_sizes": dict(Counter(facts["sizes"][rows].tolist()).most_common(10)),
        "image_modes": dict(Counter(facts["modes"][rows].tolist())),
        "unreadable": [{"file": str(paths[i]), "reason": why} for i, why in sorted(unreadable.items())],
        "exact_duplicates": {"groups": len(exact), "images": int(sum(len(g) for g in exact)),
                             "examples": [[rel[i] for i in g[:3]] for g in exact[:5]]},
        "near_duplicates": {
            "distance": distance,
            "pairs": len(pairs),  # same class: the twins that can leak
            "look_alikes_across_classes": cross_class,  # similar pictures, different letters (or mislabels)
            "clusters": int(len(multi)),
            "images_in_clusters": int(multi.sum()),
            "largest_cluster": int(sizes.max()) if len(sizes) else 0,
        },
    }
    if splits is not None:
        summary["leakage"] = leak_rates(phash, splits, labels, distance)
    return summary


def near_clusters(hashes: np.ndarray, labels: np.ndarray, distance: int) -> np.ndarray:
    """A cluster id per image: same-letter images linked by near-duplicate chains (``data.split.dedupe``)."""
    return clusters(len(hashes), same_class_pairs(near_pairs(hashes, distance), labels))
