"""Foreground masks for background randomisation: from mask files, or by key-colour thresholding.

Where they come from is ``data.masks``:
- ``auto``: mask files where they exist (``<name>.mask.png`` beside an image or a parallel
  ``masks/`` tree; the synthetic set writes its own), else no masks;
- ``files``: the same, but every image must have one;
- ``key_black`` | ``key_white`` | ``key_green``: threshold a plain backdrop of that colour
  (settings in ``data.mask_key``), cleaned up by morphology;
- ``none``: no masks (background randomisation then leaves images unchanged).

Computed masks are made once, when :class:`asl.data.cache.ImageStore` decodes the images, and
kept in its cache beside the pixels, never per epoch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from asl import ASLError
from asl.data.folder import ImageTable

MODES = ("auto", "files", "key_black", "key_white", "key_green", "none")
KEY_DEFAULTS = {"threshold": 40, "open": 3, "close": 3, "largest_only": True, "fill_holes": False}


def key_colour_mask(image: np.ndarray, colour: str, threshold: int = 40, open: int = 3, close: int = 3,
                    largest_only: bool = True, fill_holes: bool = False) -> np.ndarray:
    """0/255 mask of everything that is *not* the plain backdrop ``colour`` (black, white or green).

    A pixel is backdrop when it is within ``threshold`` of black (max channel) or white (min
    channel), or green by more than ``threshold`` over red and blue. ``open``/``close`` are the
    sizes in pixels of the morphological opening (removes specks) and closing (bridges gaps);
    ``largest_only`` keeps the largest blob (the hand), ``fill_holes`` fills enclosed holes
    (dark shadows between fingers).
    """
    a = image.astype(np.int16)
    if colour == "black":
        fg = a.max(axis=2) > threshold
    elif colour == "white":
        fg = a.min(axis=2) < 255 - threshold
    elif colour == "green":
        fg = ~((a[..., 1] - np.maximum(a[..., 0], a[..., 2])) > threshold)
    else:
        raise ASLError(f"data.masks: unknown key colour {colour!r}; use key_black, key_white or key_green")
    m = fg.astype(np.uint8) * 255
    if open > 1:
        m = cv2.morphologyEx(m, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (open, open)))
    if close > 1:
        m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (close, close)))
    if largest_only or fill_holes:
        n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
        if largest_only and n > 1:
            m = np.where(labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA])), 255, 0).astype(np.uint8)
        if fill_holes:
            contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            m = cv2.drawContours(np.zeros_like(m), contours, -1, 255, -1)
    return m


def mask_source(mode: str, table: ImageTable, key: dict[str, Any] | None = None
                ) -> tuple[list[Path | None] | None, Callable[[np.ndarray], np.ndarray] | None, str]:
    """(mask files, a function image → mask, a tag for the cache key) for ``data.masks``."""
    if mode not in MODES:
        raise ASLError(f"data.masks: {mode!r} is not one of {', '.join(MODES)}")
    if mode == "none":
        return None, None, ""
    if mode.startswith("key_"):
        unknown = set(key or {}) - set(KEY_DEFAULTS)
        if unknown:
            raise ASLError(f"data.mask_key: unknown setting(s) {sorted(unknown)}; known: {sorted(KEY_DEFAULTS)}")
        settings = {**KEY_DEFAULTS, **(key or {})}
        return None, partial(key_colour_mask, colour=mode[4:], **settings), f"{mode}:{json.dumps(settings, sort_keys=True)}"
    paths = [table.mask_path(i) for i in range(len(table.paths))]
    if mode == "files":
        missing = [table.relative(i) for i, p in enumerate(paths) if p is None]
        if missing:
            raise ASLError(f"data.masks=files: {len(missing)} image(s) have no mask (<name>.mask.png beside them or "
                           f"{table.root}/masks/<same path>.png), e.g. {missing[:3]}. Add them, or use data.masks=auto "
                           f"or a key colour (key_black/key_white/key_green).")
    return paths, None, ""
