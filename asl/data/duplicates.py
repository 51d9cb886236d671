"""Data audit: what is in a photo set, and how much of val/test has a near-twin in train.

Photo sets cut from videos or bursts hold near-identical frames; a random split puts twins on
both sides and the test score measures memory, not recognition. Exact duplicates are found by a
content hash (SHA-1 of the file), near-duplicates by a 64-bit perceptual hash (``imagehash.phash``)
within a Hamming distance. Hashes are cached beside the decoded images, under the same key. Neither
search compares all pairs (quadratic: 1.8 billion at 60,000 photos): near pairs come from an exact
index (:func:`near_pairs`), nearest train twins from comparisons within each letter.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import imagehash
import numpy as np
from PIL import Image
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from tqdm.auto import tqdm

from asl.data.cache import ImageStore, cache_key

log = logging.getLogger(__name__)
AUDIT_VERSION = 1


def file_facts(store: ImageStore, cache_dir: str | os.PathLike | None, workers: int = 4) -> dict[str, Any]:
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
    readable = [i for i in range(n) if i not in store.unreadable]
    with ThreadPoolExecutor(workers) as pool:  # SHA-1 of a large file and PIL's resize release the GIL
        done = pool.map(lambda i: _facts_of(store, i), readable)
        for i, one in zip(readable, tqdm(done, total=len(readable), desc=f"Hashing {len(readable)} images", leave=False),
                          strict=True):
            sha1[i], phash[i], sizes[i], modes[i] = one
    facts = {"sha1": sha1, "phash": phash, "sizes": sizes, "modes": modes}
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + f".tmp{os.getpid()}.npz")
        np.savez(tmp, **facts)
        os.replace(tmp, cache)
    return facts


def _facts_of(store: ImageStore, i: int) -> tuple[str, np.uint64, str, str]:
    """One image's SHA-1 (of the file), perceptual hash (of the stored image), size and mode (from the header)."""
    path = store.paths[i]
    with Image.open(path) as im:  # reads the header only
        size, mode = f"{im.width}x{im.height}", im.mode
    bits = imagehash.phash(Image.fromarray(store.image(i))).hash.flatten()
    return hashlib.sha1(Path(path).read_bytes()).hexdigest(), np.packbits(bits).view(">u8")[0], size, mode


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Hamming distances between two vectors of 64-bit hashes (len(a) × len(b), uint8)."""
    return np.bitwise_count(a[:, None] ^ b[None, :]).astype(np.uint8)


def _brute_pairs(hashes: np.ndarray, distance: int, chunk_cells: int = 1 << 22) -> np.ndarray:
    """Pairs (i, j), i < j, within ``distance`` bits by comparing every pair (each chunk of rows against
    the rows from its own start on, so each pair once; about 4M cells per chunk bounds the memory)."""
    n = len(hashes)
    chunk = max(1, chunk_cells // max(n, 1))
    out = [np.zeros((0, 2), dtype=np.int64)]
    for start in range(0, n, chunk):
        i, j = np.nonzero(hamming(hashes[start:start + chunk], hashes[start:]) <= distance)
        keep = j > i
        out.append(np.stack([i[keep], j[keep]], 1) + start)
    return np.concatenate(out)


def _blocks(distance: int) -> list[tuple[int, int]]:
    """The 64 bits cut into ``distance + 1`` disjoint (shift, width) blocks, as even as can be."""
    k = min(distance + 1, 64)
    widths = [64 // k + (b < 64 % k) for b in range(k)]
    return [(sum(widths[:b]), w) for b, w in enumerate(widths)]


def _block(hashes: np.ndarray, shift: int, width: int) -> np.ndarray:
    return (hashes >> np.uint64(shift)) & np.uint64((1 << width) - 1)


def _buckets(hashes: np.ndarray, group: np.ndarray, block: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The images sorted by group, then the block's value (stable: ascending within a bucket), and
    for each sorted position the position where its bucket ends."""
    n = len(hashes)
    value = _block(hashes, *block)
    order = np.lexsort((value, group))
    v, g = value[order], group[order]
    starts = np.flatnonzero(np.r_[True, (v[1:] != v[:-1]) | (g[1:] != g[:-1])])
    return order, np.repeat(np.r_[starts[1:], n], np.diff(np.r_[starts, n]))


def near_pairs(hashes: np.ndarray, distance: int, labels: np.ndarray | None = None) -> np.ndarray:
    """All pairs (i, j), i < j, whose hashes differ in at most ``distance`` bits, as an (m, 2) array sorted
    by i then j; with ``labels``, only pairs of the same label (the twins that can leak an answer).

    Exact without comparing all pairs (at 60,000 photos that is 1.8 billion; multi-index hashing): the
    64 bits are cut into ``distance + 1`` blocks, and two hashes within ``distance`` bits agree on at
    least one whole block, so only images that share a block's value (and a label) are compared, each
    pair at the first block it shares. Where that would compare more than a quarter of the pairs (a
    large ``distance``, or a set of look-alikes), every pair of a label is compared instead.
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    n = len(hashes)
    if n < 2:
        return np.zeros((0, 2), dtype=np.int64)
    group = np.zeros(n, np.int64) if labels is None else np.unique(labels, return_inverse=True)[1].reshape(-1)
    per_group = np.bincount(group)
    blocks = _blocks(distance)
    buckets = [_buckets(hashes, group, b) for b in blocks]
    candidates = sum(int((end - np.arange(n) - 1).sum()) for _, end in buckets)
    if distance >= 64 or candidates > (per_group * (per_group - 1) // 2).sum() / 4:  # 64 one-bit blocks: no pigeonhole
        out = [idx[_brute_pairs(hashes[idx], distance)] for idx in (np.flatnonzero(group == g) for g in range(len(per_group)))]
    else:
        out = [_first_shared(hashes, distance, blocks[:b], *buckets[b]) for b in range(len(blocks))]
    pairs = np.concatenate([np.zeros((0, 2), dtype=np.int64), *out])
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def _first_shared(hashes: np.ndarray, distance: int, earlier: list[tuple[int, int]], order: np.ndarray,
                  end: np.ndarray) -> np.ndarray:
    """The near pairs within the buckets of one block that share none of the ``earlier`` blocks (those
    were found there). Bucket mates are neighbours in ``order``: each image is compared with the next
    one, then the one after, in whole arrays, for as long as any bucket is that large."""
    out = [np.zeros((0, 2), dtype=np.int64)]
    active = np.arange(len(hashes))
    offset = 1
    while len(active := active[active + offset < end[active]]):
        i, j = order[active], order[active + offset]  # i < j
        x = hashes[i] ^ hashes[j]
        ok = np.bitwise_count(x) <= distance
        for block in earlier:
            ok &= _block(x, *block) != 0
        out.append(np.stack([i[ok], j[ok]], 1))
        offset += 1
    return np.concatenate(out)


def clusters(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected components of the near-duplicate graph: a cluster id per image (transitive)."""
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def same_class_pairs(pairs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The pairs whose images share a label: only those are twins that leak an answer."""
    return pairs[labels[pairs[:, 0]] == labels[pairs[:, 1]]]


def nearest_train(hashes: np.ndarray, splits: np.ndarray, labels: np.ndarray,
                  chunk_cells: int = 1 << 22) -> tuple[np.ndarray, np.ndarray]:
    """For every image: distance to, and index of, its closest train image of the same class (self excluded;
    255 and -1 where the class has none). Compared within each class only: a twin of another letter leaks nothing."""
    dist = np.full(len(hashes), 255, dtype=np.uint8)
    twin = np.full(len(hashes), -1, dtype=np.int64)
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        train = rows[splits[rows] == "train"]
        if len(train) == 0:
            continue
        chunk = max(1, chunk_cells // len(train))
        for start in range(0, len(rows), chunk):
            r = rows[start:start + chunk]
            d = hamming(hashes[r], hashes[train])
            d[train[None, :] == r[:, None]] = 255
            k = d.argmin(1)
            dist[r] = d[np.arange(len(r)), k]
            twin[r] = np.where(dist[r] < 255, train[k], -1)
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
    return clusters(len(hashes), near_pairs(hashes, distance, labels))
