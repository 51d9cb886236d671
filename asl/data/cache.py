"""Decoded-image cache: every photo decoded and resized once into a memory-mapped uint8 array.

The cache key covers the file list, each file's size and mtime, the image size and the mask
files, so a changed, added or removed photo builds a new cache. Later epochs and runs (and all
dataloader workers, through the shared page cache) read pixels without decoding a JPEG.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from asl import ASLError
from asl.data.folder import load_image, load_mask

log = logging.getLogger(__name__)
CACHE_VERSION = 1


def cache_key(paths: Sequence[Path], size: int, mask_paths: Sequence[Path | None] | None = None,
              mask_tag: str = "") -> str:
    """A digest of what the cached pixels depend on: files (path, size, mtime), masks and image size."""
    h = hashlib.sha1(f"v{CACHE_VERSION}:{size}:{mask_tag}".encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    for m in mask_paths or []:
        h.update(f"m:{m}\n".encode())
    return h.hexdigest()[:16]


class ImageStore:
    """RGB uint8 images (and optional 0/255 masks) of one size, from the cache or decoded on demand.

    ``unreadable`` maps the index of each file that could not be decoded to the reason; callers
    drop those images (see :meth:`asl.data.folder.ImageTable.drop`). ``mask_from`` computes a
    mask from each decoded image instead of reading mask files (``mask_tag`` names it in the
    cache key; see :mod:`asl.data.masks`).
    """

    def __init__(self, paths: Sequence[Path], size: int, mask_paths: Sequence[Path | None] | None = None,
                 cache_dir: str | os.PathLike | None = None, workers: int = 4,
                 mask_from: Callable[[np.ndarray], np.ndarray] | None = None, mask_tag: str = ""):
        self.paths = list(paths)
        self.size = size
        self.mask_paths = list(mask_paths) if mask_paths is not None and any(m is not None for m in mask_paths) else None
        self.mask_from = mask_from
        self.unreadable: dict[int, str] = {}
        self.folder: Path | None = None
        self._images = self._masks = None
        if cache_dir is not None:
            key = cache_key(self.paths, size, self.mask_paths, mask_tag)
            self.folder = Path(cache_dir).expanduser() / f"images-{size}px-{len(self.paths)}-{key}"
            self._build(workers)
        else:
            self._verify(workers)

    @property
    def has_masks(self) -> bool:
        return self.mask_paths is not None or self.mask_from is not None

    # -- building -------------------------------------------------------------------------
    def _try(self, i: int) -> tuple[np.ndarray | None, np.ndarray | None, str | None]:
        try:
            img = load_image(self.paths[i], self.size)
            m = self.mask_paths[i] if self.mask_paths else None
            mask = load_mask(m, self.size) if m is not None else None
            if self.mask_from is not None:
                mask = self.mask_from(img)
            return img, mask, None
        except ASLError as e:
            return None, None, str(e)

    def _build(self, workers: int) -> None:
        meta_file = self.folder / "meta.json"
        if meta_file.exists():
            meta = json.loads(meta_file.read_text())
            self.unreadable = {int(k): v for k, v in meta["unreadable"].items()}
            return
        tmp = self.folder.with_name(self.folder.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        n, s = len(self.paths), self.size
        images = np.lib.format.open_memmap(tmp / "images.npy", "w+", np.uint8, (n, s, s, 3))
        masks = np.lib.format.open_memmap(tmp / "masks.npy", "w+", np.uint8, (n, s, s)) if self.has_masks else None
        with ThreadPoolExecutor(workers) as pool:  # PIL and cv2 release the GIL while decoding
            it = pool.map(self._try, range(n))
            for i, (img, mask, err) in enumerate(tqdm(it, total=n, desc=f"Caching {n} images at {s}px", leave=False)):
                if err is not None:
                    self.unreadable[i] = err
                    continue
                images[i] = img
                if masks is not None:
                    masks[i] = mask if mask is not None else 255
        images.flush()
        del images, masks
        (tmp / "meta.json").write_text(json.dumps({
            "size": s, "count": n, "unreadable": self.unreadable,
            "files": [str(p) for p in self.paths[:3]] + (["..."] if n > 3 else []),
        }))
        try:
            tmp.rename(self.folder)
        except OSError:  # built concurrently by another process: use theirs
            shutil.rmtree(tmp, ignore_errors=True)

    def _verify(self, workers: int) -> None:
        """Without a cache: decode each file once up front so bad files are reported before training."""
        with ThreadPoolExecutor(workers) as pool:
            errs = pool.map(lambda i: self._try(i)[2], range(len(self.paths)))
            for i, err in enumerate(tqdm(errs, total=len(self.paths), desc="Checking images", leave=False)):
                if err is not None:
                    self.unreadable[i] = err

    # -- reading --------------------------------------------------------------------------
    def _open(self) -> None:
        # Opened lazily, so that each dataloader worker maps the file itself.
        self._images = np.load(self.folder / "images.npy", mmap_mode="r")
        if self.has_masks:
            self._masks = np.load(self.folder / "masks.npy", mmap_mode="r")

    def image(self, i: int) -> np.ndarray:
        if self.folder is None:
            return load_image(self.paths[i], self.size)
        if self._images is None:
            self._open()
        return np.array(self._images[i])

    def mask(self, i: int) -> np.ndarray | None:
        if not self.has_masks:
            return None
        if self.folder is None:
            if self.mask_from is not None:
                return self.mask_from(self.image(i))
            m = self.mask_paths[i]
            return load_mask(m, self.size) if m is not None else np.full((self.size, self.size), 255, np.uint8)
        if self._masks is None:
            self._open()
        return np.array(self._masks[i])

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_images"] = state["_masks"] = None  # memmaps are re-opened in the worker
        return state
