"""Landmark features that ignore where the hand is and how big it is, and landmark augmentation.

Input everywhere: a float tensor (B, 127) = the 21 image landmarks (x, y, z) in MediaPipe's order,
flattened, in pixel-true proportions (x, y and z as fractions of the photo's longer side, see
:func:`encode`), a handedness code (+1 right, -1 left, 0 unknown), then MediaPipe's 21 world
landmarks (metres; zeros where the source has none, e.g. keypoints.csv). A row whose image
landmarks are all zero means "no hand" (see :func:`present`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from asl import ASLError

NUM_LANDMARKS = 21
POINTS = NUM_LANDMARKS * 3
HANDEDNESS = POINTS  # the column of the handedness code; the world landmarks follow it
INPUT_DIM = 2 * POINTS + 1
FINGERS = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))
FEATURES = ("coords", "distances", "angles")  # the default set
#: every kind :func:`features` computes: the default set, and the 3-D pose kinds (:func:`palm_frame`)
ALL_FEATURES = (*FEATURES, "canonical", "orientation", "distances3d")
MIRROR = ("none", "handedness", "geometry")
SCALE = ("palm", "spread")  # the hand's size that coordinates are divided by (see normalise)
_PAIRS = torch.triu_indices(NUM_LANDMARKS, NUM_LANDMARKS, offset=1)
# Skeleton edges (for drawing) and the joints whose bend angle is a feature: (before, joint, after).
EDGES = [(0, 1), (0, 5), (0, 17), (5, 9), (9, 13), (13, 17)] + [(f[i], f[i + 1]) for f in FINGERS for i in range(3)]
_JOINTS = [(0 if i == 0 else f[i - 1], f[i], f[i + 1]) for f in FINGERS for i in range(3)]


def encode(landmarks: np.ndarray | Sequence | None, handedness: str | None = None,
           size: Sequence[int] | None = None, world: np.ndarray | Sequence | None = None) -> np.ndarray:
    """One model input row (:data:`INPUT_DIM` floats) from (21, 3) landmarks (and world landmarks, if
    the source has them); zeros when there is no hand.

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
        row[:POINTS] = lm.reshape(-1)
        row[HANDEDNESS] = {"Right": 1.0, "Left": -1.0}.get(handedness or "", 0.0)
        if world is not None:
            row[HANDEDNESS + 1:] = np.asarray(world, np.float32).reshape(-1)
    return row


def present(x: torch.Tensor) -> torch.Tensor:
    """(B,) bool: which rows hold a hand."""
    return x[:, :POINTS].abs().sum(1) > 0


def _mirrored(x: torch.Tensor, lm: torch.Tensor, mirror: str) -> torch.Tensor:
    """(B,) bool: which hands ``mirror`` flips to a right hand (``lm``: wrist-centred image landmarks)."""
    if mirror not in MIRROR:
        raise ASLError(f"model.mirror: {mirror!r} is not one of {MIRROR}")
    if mirror == "handedness":
        return x[:, HANDEDNESS] < 0
    if mirror == "geometry":  # palm's winding: index knuckle → little-finger knuckle, seen from the camera
        a, b = lm[:, 5, :2], lm[:, 17, :2]
        return (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]) < 0
    return torch.zeros_like(x[:, HANDEDNESS], dtype=torch.bool)


def check_scale(scale: str) -> str:
    """``model.scale`` checked: one of :data:`SCALE`, or one line saying which are."""
    if scale not in SCALE:
        raise ASLError(f"model.scale: {scale!r} is not one of {SCALE}")
    return scale


def normalise(x: torch.Tensor, mirror: str = "handedness", scale: str = "palm") -> torch.Tensor:
    """(B, 21, 3) landmarks with the wrist at the origin and the hand's size equal to 1; ``mirror``
    flips left hands to right (by the handedness code or by the palm's orientation), so one model
    serves both.

    The size (``scale``): ``palm``, the palm's length in the photo (wrist → middle-finger knuckle),
    which shrinks towards 0 when the palm points at the camera (a P or Q held down towards it) and
    then blows every coordinate up; or ``spread``, twice the root-mean-square distance of the 21
    points from their centre in the photo, the whole hand's size, which no single foreshortened
    bone can shrink (about the palm's length for an open hand)."""
    check_scale(scale)
    lm = x[:, :POINTS].reshape(-1, NUM_LANDMARKS, 3)
    lm = lm - lm[:, :1]
    if scale == "palm":
        size = lm[:, 9, :2].norm(dim=1)
    else:
        xy = lm[..., :2]
        size = 2 * (xy - xy.mean(1, keepdim=True)).norm(dim=-1).pow(2).mean(1).sqrt()
    lm = lm / size.clamp(min=1e-6)[:, None, None]
    return _flip_x(lm, _mirrored(x, lm, mirror))


def _flip_x(points: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    sign = torch.where(flip, -1.0, 1.0).to(points.dtype)
    return torch.cat([points[..., :1] * sign[:, None, None], points[..., 1:]], dim=-1)


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp(min=1e-9)


def palm_frame(x: torch.Tensor, mirror: str = "handedness") -> tuple[torch.Tensor, torch.Tensor]:
    """The hand in its own 3-D frame: ((B, 21, 3) points, (B, 3, 3) rotation).

    From the world landmarks where the row has them (metric, undistorted), else from the image
    landmarks with MediaPipe's relative depth; wrist at the origin, palm size (wrist → middle-finger
    knuckle) 1, left hands mirrored as in :func:`normalise`. The frame: x across the knuckles (little
    finger → index), z the palm's normal, y completing it. Points in that frame describe the
    handshape whatever way the hand is turned (a side-on D reads like a frontal one); the rotation
    (the frame's axes in camera coordinates) keeps where the hand points, which tells G from Q, H
    from U and K from P.
    """
    image = x[:, :POINTS].reshape(-1, NUM_LANDMARKS, 3)
    world = x[:, HANDEDNESS + 1:].reshape(-1, NUM_LANDMARKS, 3)
    has_world = world.abs().sum((1, 2)) > 0
    pts = torch.where(has_world[:, None, None], world, image)
    pts = pts - pts[:, :1]
    pts = pts / pts[:, 9].norm(dim=1).clamp(min=1e-9)[:, None, None]
    pts = _flip_x(pts, _mirrored(x, image - image[:, :1], mirror))
    across = _unit(pts[:, 5] - pts[:, 17])
    normal = _unit(torch.cross(pts[:, 5], pts[:, 17], dim=-1))
    rotation = torch.stack([across, torch.cross(normal, across, dim=-1), normal], dim=1)  # rows: the frame's axes
    return pts @ rotation.transpose(1, 2), rotation


def features(x: torch.Tensor, kinds: Sequence[str] = FEATURES, mirror: str = "handedness", use_z: bool = True,
             scale: str = "palm") -> torch.Tensor:
    """(B, F): normalised coordinates, pairwise 2-D distances and the 15 finger-joint angles (the
    default; ``scale``: see :func:`normalise`); ``canonical`` (the 21 points in the palm's frame),
    ``orientation`` (that frame's axes) and ``distances3d`` (pairwise 3-D distances in palm sizes),
    see :func:`palm_frame`."""
    bad = [k for k in kinds if k not in ALL_FEATURES]
    if bad or not kinds:
        raise ASLError(f"model.features: {list(kinds)} must be a non-empty subset of {ALL_FEATURES}")
    lm = normalise(x, mirror, scale)
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
    if {"canonical", "orientation", "distances3d"} & set(kinds):
        pose, rotation = palm_frame(x, mirror)
        if "canonical" in kinds:
            out.append(pose.flatten(1))
        if "orientation" in kinds:
            out.append(rotation.flatten(1))
        if "distances3d" in kinds:
            out.append((pose[:, _PAIRS[0]] - pose[:, _PAIRS[1]]).norm(dim=-1))
    f = torch.cat(out, dim=1)
    return torch.where(present(x)[:, None], f, torch.zeros_like(f))


def feature_dim(kinds: Sequence[str] = FEATURES, use_z: bool = True) -> int:
    return int(features(torch.rand(1, INPUT_DIM), kinds, "none", use_z).shape[1])


def augment(x: torch.Tensor, rotate: float = 0.0, scale: float = 0.0, jitter: float = 0.0,
            finger_length: float = 0.0, tilt: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random in-plane rotation (degrees) about the wrist, scale (±fraction), per-point jitter
    (fraction of the palm size), per-finger length changes (±fraction) and tilt: rotation out of
    the image plane about the wrist's vertical and horizontal axes (degrees, through MediaPipe's
    relative depth z), as when another signer holds the hand side-on. The world landmarks, where
    present, get the same change. Absent hands stay zero."""
    b = x.shape[0]

    def u(*shape):
        return torch.rand(*shape, generator=generator, device=x.device) * 2 - 1

    stretch = [1 + finger_length * u(b) for _ in FINGERS] if finger_length else []
    a = torch.deg2rad(rotate * u(b))
    tilts = [torch.deg2rad(tilt * u(b))[:, None] for _ in range(2)] if tilt else []
    factor = (1 + scale * u(b))[:, None, None]

    def move(points: torch.Tensor) -> torch.Tensor:  # (b, 21, 3), about each hand's wrist
        wrist = points[:, :1]
        lm = points - wrist
        palm = lm[:, 9, :2].norm(dim=1).clamp(min=1e-6)[:, None, None]
        for chain, k in zip(FINGERS, stretch, strict=False):  # each finger about its base joint
            base = lm[:, chain[0]:chain[0] + 1]
            lm[:, list(chain)] = base + (lm[:, list(chain)] - base) * k[:, None, None]
        c, s = torch.cos(a), torch.sin(a)
        lm = torch.stack([c[:, None] * lm[..., 0] - s[:, None] * lm[..., 1],
                          s[:, None] * lm[..., 0] + c[:, None] * lm[..., 1], lm[..., 2]], -1)
        for (i, j), t in zip(((0, 2), (1, 2)), tilts, strict=False):  # about the vertical axis, then the horizontal
            ci, cj = lm[..., i].clone(), lm[..., j].clone()
            lm[..., i], lm[..., j] = torch.cos(t) * ci + torch.sin(t) * cj, -torch.sin(t) * ci + torch.cos(t) * cj
        lm = lm * factor
        lm = lm + jitter * palm * torch.randn(lm.shape, generator=generator, device=x.device)
        return lm + wrist

    image = move(x[:, :POINTS].reshape(b, NUM_LANDMARKS, 3))
    world = x[:, HANDEDNESS + 1:].reshape(b, NUM_LANDMARKS, 3)
    if bool((world != 0).any()):
        world = torch.where((world.abs().sum((1, 2)) > 0)[:, None, None], move(world), world)
    out = torch.cat([image.flatten(1), x[:, HANDEDNESS:HANDEDNESS + 1], world.flatten(1)], 1)
    return torch.where(present(x)[:, None], out, x)


def check_augment(cfg: dict[str, Any] | None) -> dict[str, float]:
    cfg = dict(cfg or {})
    known = {"rotate", "scale", "jitter", "finger_length", "tilt"}
    if set(cfg) - known:
        raise ASLError(f"model.augment: unknown option(s) {sorted(set(cfg) - known)}; known: {sorted(known)}")
    if any(float(v) < 0 for v in cfg.values()) or float(cfg.get("rotate", 0)) > 180 or float(cfg.get("tilt", 0)) > 90:
        raise ASLError(f"model.augment: amounts must be >= 0 (rotate <= 180, tilt <= 90 degrees), got {cfg}")
    return {k: float(v) for k, v in cfg.items()}
