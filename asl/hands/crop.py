"""Hand crops: the square box around a detected hand, and a decoded-image store of such crops.

The store is an :class:`~asl.data.cache.ImageStore` whose cache folder sits under a directory
named after the boxes' digest, so other crops (margin, detector settings) get other caches.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from asl import ASLError
from asl.data.cache import ImageStore
from asl.data.folder import load_image, load_mask
from asl.inputs import InputSpec

CROP_VERSION = 2  # part of the crop cache key: bump when the cropping itself changes


def hand_box(result: dict[str, Any] | None, margin: float, aspect: float = 1.0) -> list[float] | None:
    """The square crop around a detected hand, as [x0, y0, x1, y1] fractions of the photo.

    ``margin`` widens the landmarks' box by that fraction of its longer side on every side;
    ``aspect`` is the photo's width / height, so the box is square in pixels. A box that fits in
    the photo is shifted inside it (a hand near the edge sits off-centre in its crop); only a box
    larger than the photo reaches outside it, and the crop pads that part with black.
    """
    if result is None:
        return None
    x0, y0, x1, y1 = result["box"]
    w, h = (x1 - x0) * aspect, y1 - y0  # in units of the photo's height
    side = max(w, h) * (1 + 2 * margin)
    cx, cy = _inside((x0 + x1) / 2, side / aspect), _inside((y0 + y1) / 2, side)
    return [cx - side / aspect / 2, cy - side / 2, cx + side / aspect / 2, cy + side / 2]


def _inside(centre: float, extent: float) -> float:
    """The centre moved so that [centre ± extent/2] lies in [0, 1]; kept where the extent exceeds 1."""
    return centre if extent >= 1 else min(max(centre, extent / 2), 1 - extent / 2)


def crop(image: np.ndarray, box: Sequence[float] | None, size: int | None = None) -> np.ndarray:
    """Cut ``box`` (fractions, may exceed the photo) out of ``image``; resize to ``size`` if given.

    What lies outside the photo is black: repeating the edge pixels instead smears a finger that
    touches the edge, or a photo's coloured frame, into stripes the model learns.
    """
    if box is None:
        out = image
    else:
        h, w = image.shape[:2]
        x0, y0, x1, y1 = (int(round(v)) for v in (box[0] * w, box[1] * h, box[2] * w, box[3] * h))
        x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
        pads = (max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w))
        if any(pads):
            image = cv2.copyMakeBorder(image, *pads, cv2.BORDER_CONSTANT, value=0)
            x0, x1, y0, y1 = x0 + pads[2], x1 + pads[2], y0 + pads[0], y1 + pads[0]
        out = image[y0:y1, x0:x1]
    if size and out.shape[:2] != (size, size):
        interp = cv2.INTER_AREA if min(out.shape[:2]) > size else cv2.INTER_LINEAR
        out = cv2.resize(out, (size, size), interpolation=interp)
    return np.ascontiguousarray(out)


def crop_hand(image: np.ndarray, result: dict[str, Any] | None, margin: float, size: int | None = None,
              blank: float | None = None, fill: Sequence[float] = (0, 0, 0)) -> np.ndarray:
    """The hand crop of a full photo (the whole photo when no hand was found); with ``blank``, painted ``fill``
    outside the hand's hull widened by that fraction (:func:`blank_outside_hand`)."""
    h, w = image.shape[:2]
    box = hand_box(result, margin, w / h)
    out = crop(image, box, size)
    if blank is not None and result is not None:
        out = blank_outside_hand(out, result, box, blank, fill)
    return out


def blank_outside_hand(crop_image: np.ndarray, result: dict[str, Any], box: Sequence[float], widen: float,
                       fill: Sequence[float]) -> np.ndarray:
    """``crop_image`` (the photo's ``box``, resized) with every pixel outside the convex hull of the hand's
    landmarks, widened by ``widen`` × the hand's longer side, set to ``fill`` (RGB, 0-255).

    The hull runs through the fingertips' and knuckles' centres, so ``widen`` must cover half a finger's
    width; 0.1 keeps whole fingers and little of the room (docs/hands.md)."""
    size_y, size_x = crop_image.shape[:2]
    points = np.asarray(result["landmarks"], dtype=np.float64)[:, :2]
    x0, y0, x1, y1 = box
    pixels = (points - [x0, y0]) / [x1 - x0, y1 - y0] * [size_x, size_y]
    mask = np.zeros((size_y, size_x), np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(pixels).astype(np.int32)), 255)
    radius = int(round(widen * float(np.ptp(pixels, axis=0).max())))
    if radius > 0:
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    out = crop_image.copy()
    out[mask == 0] = np.round(np.asarray(fill, dtype=np.float64)).astype(np.uint8)
    return out


def read_pixels(path: str | os.PathLike, hand: dict[str, Any] | None, spec: InputSpec) -> np.ndarray:
    """The photo as the model sees it before normalising: uint8 (S, S, 3), its hand crop (``spec.hand_crop``;
    no hand: the whole photo), blanked around the hand (``spec.hand_blank``), or all of it. The one decoder
    of training's crop cache, prediction and explain."""
    if spec.hand_crop:
        return crop_hand(load_image(path), hand, spec.margin, spec.image_size, spec.hand_blank, [255 * m for m in spec.mean])
    return load_image(path, spec.image_size)  # what ImageStore caches for whole photos


class HandCropStore(ImageStore):
    """Like ImageStore, but each photo is first cut to its hand (no hand: the whole photo), by :func:`read_pixels`."""

    def __init__(self, paths: Sequence[Path], spec: InputSpec, results: Sequence[dict[str, Any] | None],
                 mask_paths=None, cache_dir: str | os.PathLike | None = None, **kwargs: Any):
        self.results, self.spec, self.margin = list(results), spec, float(spec.margin)
        if cache_dir is not None:  # the crops are part of the cache key
            blank = spec.hand_blank is not None  # then the hull (the landmarks) and its colour shape the pixels too
            key = json.dumps([CROP_VERSION, self.margin, [r and r["box"] for r in self.results]]
                             + ([spec.hand_blank, spec.mean, [r and r["landmarks"] for r in self.results]] if blank else []))
            cache_dir = Path(cache_dir).expanduser() / f"handcrop-{hashlib.sha1(key.encode()).hexdigest()[:12]}"
        super().__init__(paths, spec.image_size, mask_paths, cache_dir, **kwargs)

    def _crop_mask(self, i: int) -> np.ndarray | None:
        m = self.mask_paths[i] if self.mask_paths else None
        return crop_hand(load_mask(m), self.results[i], self.margin, self.size) if m is not None else None

    def _try(self, i: int):
        try:
            img = read_pixels(self.paths[i], self.results[i], self.spec)
            mask = self._crop_mask(i)
            if self.mask_from is not None:
                mask = self.mask_from(img)
            return img, mask, None
        except ASLError as e:
            return None, None, str(e)

    def image(self, i: int) -> np.ndarray:
        if self.folder is None:
            return read_pixels(self.paths[i], self.results[i], self.spec)
        return super().image(i)

    def mask(self, i: int) -> np.ndarray | None:
        if self.folder is None and self.has_masks:
            mask = self._try(i)[1]
            return mask if mask is not None else np.full((self.size, self.size), 255, np.uint8)
        return super().mask(i)
