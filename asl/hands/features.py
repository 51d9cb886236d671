"""Landmark features that ignore where the hand is and how big it is, and landmark augmentation.

Input everywhere: a float tensor (B, 64) = the 21 landmarks (x, y, z) in MediaPipe's order,
flattened, in pixel-true proportions (x, y and z as fractions of the photo's longer side, see
:func:`encode`), followed by a handedness code (+1 right, -1 left, 0 unknown). An all-zero row
means "no hand" (see :func:`present`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from asl import ASLError

NUM_LANDMARKS = 21
INPUT_DIM = NUM_LANDMARKS * 3 + 1
FINGERS = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))
FEATURES = ("coords", "distances", "angles")
MIRROR = ("none", "handedness", "geometry")
_PAIRS = torch.triu_indices(NUM_LANDMARKS, NUM_LANDMARKS, offset=1)
# Skeleton edges (for drawing) and the joints whose bend angle is a feature: (before, joint, after).
EDGES = [(0, 1), (0, 5), (0, 17), (5, 9), (9, 13), (13, 17)] + [(f[i], f[i + 1]) for f in FINGERS for i in range(3)]
_JOINTS = [(0 if i == 0 else f[i - 1], f[i], f[i + 1]) for f in FINGERS for i in range(3)]


def encode(landmarks: np.ndarray | Sequence | None, handedness: str | None = None,
           size: Sequence[int] | None = None) -> np.ndarray:
    """One model input row (64 floats) from (21, 3) landmarks; zeros when there is no hand.

    MediaPipe gives x as a fraction of the photo's width, y of its height and z on x's scale, so on a
    640 × 480 frame a hand would be stretched 4:3 before distances and angles are taken. With the
    photo's ``size`` (width, height) every coordinate becomes a fraction of the longer side: the
    same hand in a wide or a tall photo gives the same row. Square photos are unchanged.
    """
    row = np.zeros(INPUT_DIM, np.float32)
    if landmarks is not None:
        lm = np.asarray(landmarks, np.float32).reshape(NUM_LANDMARKS, 3).copy()
        if size is not None:
            w, h = (float(v) for v in size)
            lm *= np.array([w, h, w], np.float32) / max(w, h)
        row[:-1] = lm.reshape(-1)
        row[-1] = {"Right": 1.0, "Left": -1.0}.get(handedness or "", 0.0)
    return row


def present(x: torch.Tensor) -> torch.Tensor:
    """(B,) bool: which rows hold a hand."""
    return x[:, :-1].abs().sum(1) > 0


def normalise(x: torch.Tensor, mirror: str = "handedness") -> torch.Tensor:
    """(B, 21, 3) landmarks with the wrist at the origin and the palm size (wrist → middle-finger
    knuckle) equal to 1; ``mirror`` flips left hands to right (by the handedness code or by the
    palm's orientation), so one model serves both."""
    if mirror not in MIRROR:
        raise ASLError(f"model.mirror: {mirror!r} is not one of {MIRROR}")
    lm = x[:, :-1].reshape(-1, NUM_LANDMARKS, 3)
    lm = lm - lm[:, :1]
    scale = lm[:, 9, :2].norm(dim=1).clamp(min=1e-6)
    lm = lm / scale[:, None, None]
    if mirror == "handedness":
        flip = x[:, -1] < 0
    elif mirror == "geometry":  # palm's winding: index knuckle → little-finger knuckle, seen from the camera
        a, b = lm[:, 5, :2], lm[:, 17, :2]
        flip = (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]) < 0
    else:
        flip = torch.zeros_like(x[:, -1], dtype=torch.bool)
    sign = torch.where(flip, -1.0, 1.0).to(lm.dtype)
    return torch.cat([lm[..., :1] * sign[:, None, None], lm[..., 1:]], dim=-1)


def features(x: torch.Tensor, kinds: Sequence[str] = FEATURES, mirror: str = "handedness", use_z: bool = True) -> torch.Tensor:
    """(B, F): normalised coordinates, pairwise 2-D distances and the 15 finger-joint angles."""
    bad = [k for k in kinds if k not in FEATURES]
    if bad or not kinds:
        raise ASLError(f"model.features: {list(kinds)} must be a non-empty subset of {FEATURES}")
    lm = normalise(x, mirror)
    if not use_z:
        lm = lm[..., :2]
    out = []
    if "coords" in kinds:
        out.append(lm.flatten(1))
    if "distances" in kinds:
        xy = lm[..., :2]
        out.append((xy[:, _PAIRS[0]] - xy[:, _PAIRS[1]]).norm(dim=-1))
    if "angles" in kinds:
        j = torch.tensor(_JOINTS, device=x.device)
        u, v = lm[:, j[:, 0]] - lm[:, j[:, 1]], lm[:, j[:, 2]] - lm[:, j[:, 1]]
        cos = (u * v).sum(-1) / (u.norm(dim=-1) * v.norm(dim=-1)).clamp(min=1e-6)
        out.append(cos.clamp(-1, 1))
    f = torch.cat(out, dim=1)
    return torch.where(present(x)[:, None], f, torch.zeros_like(f))


def feature_dim(kinds: Sequence[str] = FEATURES, use_z: bool = True) -> int:
    return int(features(torch.cat([torch.rand(1, INPUT_DIM - 1), torch.ones(1, 1)], 1), kinds, "none", use_z).shape[1])


def augment(x: torch.Tensor, rotate: float = 0.0, scale: float = 0.0, jitter: float = 0.0,
            finger_length: float = 0.0, tilt: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random in-plane rotation (degrees) about the wrist, scale (±fraction), per-point jitter
    (fraction of the palm size), per-finger length changes (±fraction) and tilt: rotation out of
    the image plane about the wrist's vertical and horizontal axes (degrees, through MediaPipe's
    relative depth z), as when another signer holds the hand side-on. Absent hands stay zero."""
    b = x.shape[0]
    lm = x[:, :-1].reshape(b, NUM_LANDMARKS, 3).clone()
    wrist = lm[:, :1].clone()
    lm = lm - wrist
    palm = lm[:, 9, :2].norm(dim=1).clamp(min=1e-6)[:, None, None]

    def u(*shape):
        return torch.rand(*shape, generator=generator, device=x.device) * 2 - 1

    if finger_length:
        for chain in FINGERS:  # stretch each finger about its base joint
            k = 1 + finger_length * u(b)
            base = lm[:, chain[0]:chain[0] + 1]
            lm[:, list(chain)] = base + (lm[:, list(chain)] - base) * k[:, None, None]
    a = torch.deg2rad(rotate * u(b))
    c, s = torch.cos(a), torch.sin(a)
    xr = c[:, None] * lm[..., 0] - s[:, None] * lm[..., 1]
    yr = s[:, None] * lm[..., 0] + c[:, None] * lm[..., 1]
    lm = torch.stack([xr, yr, lm[..., 2]], -1)
    if tilt:
        for i, j in ((0, 2), (1, 2)):  # about the vertical axis (x and z mix), then the horizontal (y and z)
            t = torch.deg2rad(tilt * u(b))[:, None]
            ci, cj = lm[..., i].clone(), lm[..., j].clone()
            lm[..., i], lm[..., j] = torch.cos(t) * ci + torch.sin(t) * cj, -torch.sin(t) * ci + torch.cos(t) * cj
    lm = lm * (1 + scale * u(b))[:, None, None]
    lm = lm + jitter * palm * torch.randn(lm.shape, generator=generator, device=x.device)
    lm = lm + wrist
    out = torch.cat([lm.flatten(1), x[:, -1:]], 1)
    return torch.where(present(x)[:, None], out, x)


def check_augment(cfg: dict[str, Any] | None) -> dict[str, float]:
    cfg = dict(cfg or {})
    known = {"rotate", "scale", "jitter", "finger_length", "tilt"}
    if set(cfg) - known:
        raise ASLError(f"model.augment: unknown option(s) {sorted(set(cfg) - known)}; known: {sorted(known)}")
    if any(float(v) < 0 for v in cfg.values()) or float(cfg.get("rotate", 0)) > 180 or float(cfg.get("tilt", 0)) > 90:
        raise ASLError(f"model.augment: amounts must be >= 0 (rotate <= 180, tilt <= 90 degrees), got {cfg}")
    return {k: float(v) for k, v in cfg.items()}
