"""Background randomisation: cut the hand out by its mask, re-place it on a new background.

A model trained on hands against one backdrop (black cloth, one room) learns the backdrop. Here
every training image gets a fresh background from a procedural *family* (noise at several
scales, gradients, shapes, stripes, textures, blurred clutter) or from a folder of the user's own
background photos, and the hand is re-placed at a random scale and position with a feathered
edge. Families named in ``holdout`` are never drawn in training; the robustness report
(:func:`asl.runs.evaluate.background_shift`) composites the test images onto exactly those.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import albumentations as A
import cv2
import numpy as np

from asl import ASLError
from asl.data.folder import IMAGE_EXTENSIONS, load_image

Rng = np.random.Generator


def _colour(rng: Rng) -> np.ndarray:
    return rng.integers(0, 256, 3).astype(np.float32)


def _smooth_noise(rng: Rng, h: int, w: int, cells: int, channels: int = 3) -> np.ndarray:
    """Value noise in [0, 1]: a ``cells``-wide random grid, upsampled smoothly to h×w."""
    grid = rng.random((cells, cells, channels)).astype(np.float32)
    out = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(out.reshape(h, w, channels), 0, 1)


def noise(rng: Rng, h: int, w: int) -> np.ndarray:
    """Coloured noise at one random scale, from pixel grain to a few large blobs."""
    cells = int(rng.choice([2, 4, 8, 16, 32, max(h, 2)]))
    lo, hi = _colour(rng), _colour(rng)
    return lo + (hi - lo) * _smooth_noise(rng, h, w, cells, 1) + rng.normal(0, 8, (h, w, 3))


def gradient(rng: Rng, h: int, w: int) -> np.ndarray:
    """A linear colour ramp at a random angle, like a lit wall."""
    a = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (np.cos(a) * x / w + np.sin(a) * y / h)
    t = ((t - t.min()) / max(float(np.ptp(t)), 1e-6))[..., None]
    return _colour(rng) * (1 - t) + _colour(rng) * t


def shapes(rng: Rng, h: int, w: int) -> np.ndarray:
    """Flat-coloured rectangles, circles and thick lines on a plain base: furniture, frames, doors."""
    img = np.empty((h, w, 3), np.float32)
    img[:] = _colour(rng)
    for _ in range(int(rng.integers(3, 12))):
        c = tuple(float(v) for v in _colour(rng))
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = int(rng.integers(0, w)), int(rng.integers(0, h))
        kind = rng.integers(3)
        if kind == 0:
            cv2.rectangle(img, (x0, y0), (x1, y1), c, -1)
        elif kind == 1:
            cv2.circle(img, (x0, y0), int(rng.integers(2, max(3, w // 3))), c, -1)
        else:
            cv2.line(img, (x0, y0), (x1, y1), c, int(rng.integers(1, max(2, w // 8))))
    return img


def stripes(rng: Rng, h: int, w: int) -> np.ndarray:
    """Two-colour stripes (hard or soft) at a random angle and period: blinds, shelves, tiles."""
    a = rng.uniform(0, np.pi)
    period = rng.uniform(3, max(4.0, w / 2))
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    wave = np.sin(2 * np.pi * (np.cos(a) * x + np.sin(a) * y) / period)
    t = (wave > 0).astype(np.float32) if rng.random() < 0.5 else (wave + 1) / 2
    return _colour(rng) * (1 - t[..., None]) + _colour(rng) * t[..., None]


def texture(rng: Rng, h: int, w: int) -> np.ndarray:
    """Several octaves of noise in a random palette: wood, fabric, carpet, foliage."""
    t = sum(_smooth_noise(rng, h, w, 2 ** k, 1) / 2 ** (k - 1) for k in range(1, 6))
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    t = (np.sin(t * rng.uniform(3, 20)) + 1) / 2 if rng.random() < 0.5 else t  # rings / marbling
    return _colour(rng) * (1 - t) + _colour(rng) * t


def clutter(rng: Rng, h: int, w: int) -> np.ndarray:
    """An out-of-focus scene: many shapes over a gradient, blurred, as behind a photographed hand."""
    img = 0.5 * gradient(rng, h, w) + 0.5 * shapes(rng, h, w)
    for _ in range(int(rng.integers(5, 20))):
        c = tuple(float(v) for v in _colour(rng))
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.ellipse(img, (cx, cy), (int(rng.integers(1, w // 4 + 2)), int(rng.integers(1, h // 4 + 2))),
                    float(rng.uniform(0, 180)), 0, 360, c, -1)
    sigma = rng.uniform(0.5, 3.0) * max(h, w) / 64
    return cv2.GaussianBlur(img, (0, 0), sigma)


FAMILIES: dict[str, Callable[[Rng, int, int], np.ndarray]] = {
    "noise": noise, "gradient": gradient, "shapes": shapes, "stripes": stripes, "texture": texture, "clutter": clutter,
}
PHOTOS = "photos"  # the family of the user's own background photos (needs photo_dir)
SHIFT_FAMILIES = ("stripes",)  # shift test for runs without randomisation: what the procedural recipe holds out
ARM_SKIP = 2  # extend_arm: bottom rows left out before the arm is drawn by repeating the row above


def list_photos(photo_dir: str | os.PathLike) -> list[Path]:
    folder = Path(photo_dir).expanduser()
    if not folder.is_dir():
        raise ASLError(f"data.background.photo_dir: {folder} is not a folder of background photos")
    photos = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not photos:
        raise ASLError(f"data.background.photo_dir: {folder} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    return photos


def render_background(family: str, rng: Rng, h: int, w: int, photos: Sequence[Path] = ()) -> np.ndarray:
    """One h×w uint8 RGB background of a family (for ``photos``: a random crop of a random photo)."""
    if family == PHOTOS:
        img = load_image(photos[int(rng.integers(len(photos)))])
        ph, pw = img.shape[:2]
        side = int(min(ph, pw) * rng.uniform(0.4, 1.0))
        y, x = int(rng.integers(0, ph - side + 1)), int(rng.integers(0, pw - side + 1))
        crop = img[y:y + side, x:x + side]
        return cv2.resize(crop[:, ::-1] if rng.random() < 0.5 else crop, (w, h), interpolation=cv2.INTER_AREA)
    return np.clip(FAMILIES[family](rng, h, w), 0, 255).astype(np.uint8)


def feather_alpha(mask: np.ndarray, feather: float) -> np.ndarray:
    """Soft alpha in [0, 1] from a 0/255 mask; exactly 1 more than ~2·feather pixels inside the edge."""
    alpha = (mask > 127).astype(np.float32)
    if feather > 0:
        alpha = cv2.GaussianBlur(alpha, (0, 0), feather)
        alpha[alpha > 0.999] = 1.0
    return alpha


def composite(image: np.ndarray, mask: np.ndarray, background: np.ndarray, feather: float) -> np.ndarray:
    """Hand (where ``mask``) over ``background``; pixels well inside the mask are kept exactly."""
    alpha = feather_alpha(mask, feather)[..., None]
    out = image.astype(np.float32) * alpha + background.astype(np.float32) * (1 - alpha)
    out = np.where(alpha == 1.0, image, np.clip(np.rint(out), 0, 255).astype(np.uint8))
    return out.astype(np.uint8)


def relight(image: np.ndarray, brightness: float, saturation: float) -> np.ndarray:
    """``image`` with its colour saturation and brightness scaled (1, 1 leaves it unchanged)."""
    f = image.astype(np.float32)
    grey = f.mean(axis=2, keepdims=True)
    f = (grey + (f - grey) * saturation) * brightness
    return np.clip(np.rint(f), 0, 255).astype(np.uint8)


def placement(mask: np.ndarray, rng: Rng, scale: Sequence[float], out_size: tuple[int, int],
              anchor_bottom: bool = True) -> np.ndarray | None:
    """A 2×3 affine matrix moving the hand's bounding box to a random size and place inside the canvas.

    ``scale`` is the range of the hand's longer side as a fraction of the canvas side. With
    ``anchor_bottom``, a mask that touches the bottom edge (a wrist or arm entering the picture)
    stays on it. None when the mask is empty.
    """
    ys, xs = np.nonzero(mask > 127)
    if len(xs) == 0:
        return None
    h, w = out_size
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    side = max(x1 - x0, y1 - y0)
    s = rng.uniform(*scale) * min(h, w) / side
    bw, bh = (x1 - x0) * s, (y1 - y0) * s
    tx = rng.uniform(0, max(w - bw, 0)) - x0 * s
    ty = rng.uniform(0, max(h - bh, 0)) - y0 * s
    if anchor_bottom and y1 >= mask.shape[0]:  # a forearm cut by the bottom edge stays attached to it
        ty = h - y1 * s
    return np.array([[s, 0, tx], [0, s, ty]], np.float32)


def _factor_range(name: str, r: Sequence[float] | None, zero_allowed: bool) -> tuple[float, float] | None:
    """A validated [low, high] range of a factor (``data.background.<name>``), or None."""
    if r is None:
        return None
    if len(r) != 2 or not (0 <= r[0] <= r[1]) or (r[0] == 0 and not zero_allowed):
        raise ASLError(f"data.background.{name}: expected [low, high] with 0 {'<=' if zero_allowed else '<'} low <= high, "
                       f"got {list(r)}")
    return float(r[0]), float(r[1])


class BackgroundComposite(A.DualTransform):
    """Replace everything outside the hand's mask with a random background; optionally re-place the hand.

    Args:
        families: background families to draw from (names in :data:`FAMILIES`, or ``photos``).
        holdout: families never drawn here (kept for the background-shift test).
        photo_dir: folder of background photos, for the ``photos`` family.
        scale: range of the hand's longer side as a fraction of the image side; null keeps the
            hand where and how large it is.
        feather: Gaussian sigma of the soft edge, in pixels at the working image size.
        extend_arm: when the mask touches the bottom edge (a wrist cut by the frame), the re-placed
            hand may float anywhere and its bottom row is stretched down to the canvas edge: a
            forearm, as in photos of a signer (hand sets cut at the wrist have none).
        hand_brightness: range of a factor on the hand's brightness alone, drawn log-uniformly
            (e.g. [0.12, 1.3]: from a back-lit silhouette to a bright hand); null leaves the hand's
            light as photographed. Light changes of the whole picture belong in the augmentations.
        hand_saturation: range of a factor on the hand's colour saturation (0 = grey); null = unchanged.
        p: probability of applying the transform.

    Images whose mask covers everything (no mask known) pass through unchanged.
    """

    def __init__(self, families: Sequence[str] = tuple(FAMILIES), holdout: Sequence[str] = (),
                 photo_dir: str | None = None, scale: Sequence[float] | None = (0.45, 0.95),
                 feather: float = 1.0, extend_arm: bool = False, hand_brightness: Sequence[float] | None = None,
                 hand_saturation: Sequence[float] | None = None, p: float = 1.0):
        super().__init__(p=p)
        known = set(FAMILIES) | {PHOTOS}
        unknown = sorted((set(families) | set(holdout)) - known)
        if unknown:
            raise ASLError(f"data.background: unknown background families {unknown}; known: {sorted(known)}")
        self.families = [f for f in families if f not in set(holdout)]
        if not self.families:
            raise ASLError(f"data.background: every family in {list(families)} is held out; keep at least one for training")
        self.holdout = list(holdout)
        self.photos = list_photos(photo_dir) if PHOTOS in self.families else []
        self.photo_dir = photo_dir
        self.scale = tuple(scale) if scale is not None else None
        self.feather = feather
        self.extend_arm = extend_arm
        self.hand_brightness = _factor_range("hand_brightness", hand_brightness, zero_allowed=False)
        self.hand_saturation = _factor_range("hand_saturation", hand_saturation, zero_allowed=True)

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        mask = data.get("mask")
        if mask is None or mask.min() > 127:
            return {"matrix": None, "background": None, "pad": 0}
        h, w = data["image"].shape[:2]
        rng = self.random_generator
        family = self.families[int(rng.integers(len(self.families)))]
        arm = self.extend_arm and bool(mask[-1].max() > 127)
        matrix = placement(mask, rng, self.scale, (h, w), anchor_bottom=not arm) if self.scale is not None else None
        light = (float(np.exp(rng.uniform(*np.log(self.hand_brightness)))) if self.hand_brightness else 1.0,
                 float(rng.uniform(*self.hand_saturation)) if self.hand_saturation else 1.0)
        return {"matrix": matrix, "background": render_background(family, rng, h, w, self.photos),
                "family": family, "mask_in": mask, "pad": 2 * h if arm and matrix is not None else 0, "light": light}

    @staticmethod
    def _warp(a: np.ndarray, matrix: np.ndarray | None, pad: int) -> np.ndarray:
        if matrix is None:
            return a
        h, w = a.shape[:2]
        if pad:  # repeat a row near the bottom (the last ones are dark where resizing met the backdrop)
            a = cv2.copyMakeBorder(a[:h - ARM_SKIP], 0, pad + ARM_SKIP, 0, 0, cv2.BORDER_REPLICATE)
        return cv2.warpAffine(a, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def apply(self, img: np.ndarray, matrix=None, background=None, pad: int = 0, light=(1.0, 1.0),
              **params: Any) -> np.ndarray:
        if background is None:
            return img
        if light != (1.0, 1.0):
            img = relight(img, *light)
        mask = self._warp(params["mask_in"], matrix, pad)
        return composite(self._warp(img, matrix, pad), mask, background, self.feather)

    def apply_to_mask(self, mask: np.ndarray, matrix=None, background=None, pad: int = 0, **params: Any) -> np.ndarray:
        if background is None:
            return mask
        return np.where(self._warp(mask, matrix, pad) > 127, 255, 0).astype(mask.dtype)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("families", "holdout", "photo_dir", "scale", "feather", "extend_arm", "hand_brightness", "hand_saturation")
