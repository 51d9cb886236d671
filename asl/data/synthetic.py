"""The embedded default data set: procedurally rendered hand signs, one pose per letter.

Each image comes with its foreground mask (``<name>.mask.png`` beside it) and the 21 hand
keypoints in MediaPipe's order (wrist; thumb CMC, MCP, IP, tip; then MCP, PIP, DIP, tip of the
index, middle, ring and little finger), stored in ``keypoints.csv`` at the root. The set is
written once as an ordinary ``root/<LETTER>/<image>`` folder, so every other part of the
codebase (folder loader, masks, landmarks) treats it like the user's own photos.

The hand is a 2-D projection of a simple 3-D skeleton: fingers bend towards the camera, so a
curled finger projects short and its tip lands over the palm, as in a photo of a fist. Letters
that differ only by where the thumb tucks (M, N, T, S, A, E) stay hard, as they are in real data.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from asl import LETTERS, ASLError

GENERATOR_VERSION = 8
NUM_KEYPOINTS = 21

# Hand geometry in palm widths; y points from the wrist to the fingers, x from thumb to little finger.
_MCP = {"index": (-0.33, 1.0), "middle": (-0.1, 1.06), "ring": (0.13, 1.0), "pinky": (0.34, 0.88)}
_SEGMENTS = {
    "index": (0.46, 0.27, 0.21),
    "middle": (0.5, 0.3, 0.23),
    "ring": (0.47, 0.28, 0.22),
    "pinky": (0.37, 0.22, 0.19),
}
_FINGER_DIR = {"index": -6.0, "middle": 0.0, "ring": 6.0, "pinky": 13.0}  # degrees from +y
_THUMB_BASE = (-0.36, 0.22)
_THUMB_SEGMENTS = (0.36, 0.3, 0.25)
_FINGERS = ("index", "middle", "ring", "pinky")

# Flexion (degrees, per joint MCP/PIP/DIP) of the finger shapes used by the letters.
_SHAPES = {
    "E": (0, 0, 0),  # extended
    "C": (85, 100, 70),  # curled into the palm
    "R": (35, 60, 45),  # rounded, as in C and O
    "O": (50, 85, 55),  # rounded more, tips meet the thumb
    "K": (10, 95, 80),  # hooked at the middle joints (E, X)
    "B": (80, 5, 5),  # bent forward at the knuckle (D's helpers)
}

# Thumb: direction of the first segment (degrees from +y, positive towards the outside) and the
# turn at each of the two later joints (negative turns across the palm).
_THUMBS = {
    "side": (8, 0, 0),  # A: straight up beside the index
    "out": (62, -5, 0),  # L, Y, G: sticking out
    "across": (-25, -55, -35),  # B, U, V, W: folded across the palm
    "over": (-50, -30, -5),  # S: across the front of the curled fingers
    "tuck_t": (0, -28, -10),  # T: tip between index and middle
    "tuck_n": (-10, -48, -15),  # N: tip between middle and ring
    "tuck_m": (-22, -60, -20),  # M: tip between ring and little finger
    "round": (40, -45, -35),  # C, O: curved to face the fingers
    "meet": (25, -40, -40),  # D, F: tip meets a curled finger
    "up": (-2, -20, 10),  # K, P: tip raised between index and middle
    "low": (-30, -60, -40),  # E: tucked low under the hooked fingers
}


@dataclass(frozen=True)
class Pose:
    """One letter's hand pose: finger shapes, extra spread, thumb state, whole-hand rotation."""

    fingers: str  # shape letter per finger: index, middle, ring, pinky
    thumb: str
    spread: tuple[float, float, float, float] = (0, 0, 0, 0)  # extra degrees per finger
    rotation: float = 0.0  # degrees, counter-clockwise; sideways and downward letters


POSES: dict[str, Pose] = {
    "A": Pose("CCCC", "side"),
    "B": Pose("EEEE", "across", (3, 0, -3, -6)),
    "C": Pose("RRRR", "round", rotation=-70),
    "D": Pose("EBBB", "meet"),
    "E": Pose("KKKK", "low"),
    "F": Pose("OEEE", "meet", (0, -6, 0, 8)),
    "G": Pose("ECCC", "out", rotation=-85),
    "H": Pose("EECC", "across", (3, -3, 0, 0), rotation=-85),
    "I": Pose("CCCE", "over"),
    "K": Pose("EECC", "up", (-10, 14, 0, 0)),
    "L": Pose("ECCC", "out"),
    "M": Pose("CCCC", "tuck_m"),
    "N": Pose("CCCC", "tuck_n"),
    "O": Pose("OOOO", "round", rotation=-40),
    "P": Pose("EECC", "up", (-10, 14, 0, 0), rotation=-150),
    "Q": Pose("ECCC", "out", rotation=-160),
    "R": Pose("EECC", "across", (8, -12, 0, 0)),
    "S": Pose("CCCC", "over"),
    "T": Pose("CCCC", "tuck_t"),
    "U": Pose("EECC", "across", (4, -4, 0, 0)),
    "V": Pose("EECC", "across", (-12, 12, 0, 0)),
    "W": Pose("EEEC", "across", (-14, 0, 14, 0)),
    "X": Pose("KCCC", "across"),
    "Y": Pose("CCCE", "out", (0, 0, 0, 25)),
}


def _rot(v: np.ndarray, deg: float) -> np.ndarray:
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def pose_keypoints(pose: Pose, rng: np.random.Generator, jitter: float = 4.0) -> np.ndarray:
    """The 21 keypoints (x, y, z) in palm widths for a pose, with per-joint angle noise (degrees)."""
    pts = np.zeros((NUM_KEYPOINTS, 3))
    # Thumb: in-plane chain turning across the palm.
    base_dir, turn1, turn2 = _THUMBS[pose.thumb]
    pos = np.array(_THUMB_BASE, dtype=float)
    pts[1, :2] = pos
    angle = base_dir + rng.normal(0, jitter)
    for j, (length, turn) in enumerate(zip(_THUMB_SEGMENTS, (0.0, turn1, turn2), strict=True)):
        angle += turn + (rng.normal(0, jitter) if j else 0.0)
        # +angle points outwards, i.e. towards -x for a hand whose thumb is on the left.
        pos = pos + length * np.array([-math.sin(math.radians(angle)), math.cos(math.radians(angle))])
        pts[2 + j, :2] = pos
    # Fingers: flexion towards the camera shortens the projection.
    for f, (name, shape) in enumerate(zip(_FINGERS, pose.fingers, strict=True)):
        k = 5 + 4 * f
        direction = _FINGER_DIR[name] + pose.spread[f] + rng.normal(0, jitter / 2)
        d = np.array([math.sin(math.radians(direction)), math.cos(math.radians(direction))])
        pos3 = np.array([*_MCP[name], 0.0])
        pts[k] = pos3
        flex = 0.0
        for j, (length, bend) in enumerate(zip(_SEGMENTS[name], _SHAPES[shape], strict=True)):
            flex += bend + rng.normal(0, jitter)
            step = length * math.cos(math.radians(flex))
            pos3 = pos3 + np.array([d[0] * step, d[1] * step, -length * math.sin(math.radians(flex))])
            pts[k + 1 + j] = pos3
    return pts


def _skin(rng: np.random.Generator) -> np.ndarray:
    """A skin tone (RGB) from pale to dark brown."""
    t = rng.uniform(0, 1)
    light, dark = np.array([240, 205, 180]), np.array([95, 60, 40])
    return np.clip(light * (1 - t) + dark * t + rng.normal(0, 8, 3), 0, 255)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A plain background, as in a studio or against a wall: one muted colour, or a soft gradient."""
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(0, 110), rng.uniform(40, 235)]]], np.uint8)
    c1 = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)
    if rng.uniform() < 0.5:
        return np.broadcast_to(c1, (size, size, 3)).astype(np.float32).copy()
    c2 = np.clip(c1 + rng.normal(0, 30, 3), 0, 255)
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    ramp = ramp[:, None] if rng.uniform() < 0.5 else ramp[None, :]
    ramp = np.broadcast_to(ramp, (size, size))[..., None]
    return (c1 * (1 - ramp) + c2 * ramp).astype(np.float32)


def render(letter: str, rng: np.random.Generator, size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one sample: (RGB uint8 image, uint8 mask 0/255, keypoints (21, 3) with x, y in [0, 1])."""
    pose = POSES[letter]
    ss = 3 * size  # supersample, then area-downsample for smooth edges
    kp = pose_keypoints(pose, rng)
    mirror = rng.uniform() < 0.25  # a left hand now and then
    if mirror:
        kp[:, 0] *= -1
    rotation = pose.rotation * (-1 if mirror else 1) + rng.normal(0, 8)
    scale = rng.uniform(0.28, 0.36) * ss  # palm width in pixels: the hand fills most of the frame
    xy = np.stack([_rot(p, -rotation) for p in kp[:, :2] * [1, -1]])  # image y points down
    centre = xy.mean(0) * scale
    offset = np.array([ss / 2, ss / 2]) - centre + rng.uniform(-0.07, 0.07, 2) * ss
    pix = xy * scale + offset
    z = kp[:, 2]

    width = 0.21 * scale * rng.uniform(0.9, 1.1)
    skin = _skin(rng)
    edge = skin * 0.6
    img = _background(rng, ss)
    mask = np.zeros((ss, ss), np.uint8)

    def draw(canvas, colour, pts, thick):
        p = [tuple(int(round(v)) for v in q) for q in pts]
        for a, b in zip(p[:-1], p[1:], strict=True):
            cv2.line(canvas, a, b, colour, thick, cv2.LINE_AA)
        for q in p[1:]:
            cv2.circle(canvas, q, max(1, thick // 2), colour, -1, cv2.LINE_AA)

    palm = pix[[0, 1, 5, 9, 13, 17]]
    hull = cv2.convexHull(np.round(palm).astype(np.int32))
    chains = [[1, 2, 3, 4]] + [[k, k + 1, k + 2, k + 3] for k in (5, 9, 13, 17)]
    # Paint far-to-near: the palm, then chains sorted by how far forward their tips come.
    order = [c for c in sorted(range(1, 5), key=lambda c: -z[chains[c]].min())] + [0]  # thumb on top
    cv2.fillConvexPoly(img, hull, (edge * 0.9).tolist(), cv2.LINE_AA)
    inner = cv2.convexHull(np.round((palm - palm.mean(0)) * 0.93 + palm.mean(0)).astype(np.int32))
    cv2.fillConvexPoly(img, inner, skin.tolist(), cv2.LINE_AA)
    cv2.fillConvexPoly(mask, hull, 255, cv2.LINE_AA)
    t = max(2, int(width))
    for c in order:
        pts = pix[chains[c]]
        thick = int(t * (1.15 if c == 0 else 1.0))
        draw(img, edge.tolist(), pts, thick + max(2, t // 4))
        draw(img, skin.tolist(), pts, thick)
        draw(mask, 255, pts, thick + max(2, t // 4))
    # Wrist and forearm leaving the frame below the palm.
    arm_dir = pix[0] - pix[[5, 17]].mean(0)
    arm_dir = arm_dir / (np.linalg.norm(arm_dir) + 1e-6)
    arm_end = pix[0] + arm_dir * ss
    wrist, end = tuple(np.round(pix[0]).astype(int)), tuple(np.round(arm_end).astype(int))
    arm = int(1.7 * t)
    for canvas, colour, thick in ((img, edge.tolist(), arm + 4), (img, skin.tolist(), arm), (mask, 255, arm + 4)):
        cv2.line(canvas, wrist, end, colour, thick, cv2.LINE_AA)

    # Lighting: a directional gradient over everything, then a little sensor noise and blur.
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    a = rng.uniform(0, 2 * math.pi)
    light = 1 + rng.uniform(0.05, 0.3) * ((xx - 0.5) * math.cos(a) + (yy - 0.5) * math.sin(a))
    img = img * light[..., None] * rng.uniform(0.75, 1.15)
    img = img + rng.normal(0, rng.uniform(1, 6), img.shape)
    if rng.uniform() < 0.3:
        img = cv2.GaussianBlur(img, (3, 3), 0)
    image = np.clip(img, 0, 255).astype(np.uint8)
    mask = (cv2.resize(mask, (size, size), interpolation=cv2.INTER_AREA) >= 128).astype(np.uint8) * 255
    keypoints = np.concatenate([pix / ss, (z * scale / ss)[:, None]], axis=1).astype(np.float32)
    return image, mask, keypoints


def dataset_dir(cache_dir: str | os.PathLike, per_class: int, image_size: int, seed: int, classes=LETTERS) -> Path:
    """Where the set with these settings lives in the cache (one folder per distinct setting)."""
    key = json.dumps([GENERATOR_VERSION, per_class, image_size, seed, list(classes)])
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    return Path(cache_dir).expanduser() / f"synthetic-{per_class}x{image_size}px-seed{seed}-{digest}"


def generate(
    cache_dir: str | os.PathLike,
    per_class: int = 200,
    image_size: int = 64,
    seed: int = 0,
    classes=LETTERS,
) -> Path:
    """Render the set once into ``cache_dir`` and return its root; later calls reuse it.

    Deterministic: every image is drawn from its own generator seeded by (seed, letter, index),
    so the set does not depend on the order or the number of images made before it.
    """
    unknown = sorted(set(classes) - set(POSES))
    if unknown:
        raise ASLError(f"data.classes: the synthetic set has no pose for {unknown}; choose from {list(POSES)}")
    if per_class < 1 or image_size < 16:
        raise ASLError("data.synthetic: per_class must be >= 1 and image_size >= 16")
    root = dataset_dir(cache_dir, per_class, image_size, seed, classes)
    if (root / "keypoints.csv").exists():
        return root
    tmp = root.with_name(root.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for letter in classes:
        (tmp / letter).mkdir(parents=True)
    images = [(letter, i) for letter in classes for i in range(per_class)]
    for letter, i in tqdm(images, desc=f"Rendering {len(images)} synthetic images", leave=False):
        rng = np.random.default_rng([seed, LETTERS.index(letter), i])
        image, mask, kp = render(letter, rng, image_size)
        name = f"{letter}/{letter}_{i:05d}"
        cv2.imwrite(str(tmp / f"{name}.png"), image[..., ::-1])
        cv2.imwrite(str(tmp / f"{name}.mask.png"), mask)
        rows.append(f"{name}.png," + ",".join(f"{v:.5f}" for v in kp.ravel()))
    header = "file," + ",".join(f"{c}{k}" for k in range(NUM_KEYPOINTS) for c in "xyz")
    (tmp / "keypoints.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    try:
        tmp.rename(root)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def read_keypoints(root: str | os.PathLike) -> dict[str, np.ndarray]:
    """``keypoints.csv`` of a generated set as {relative file: (21, 3) array}."""
    out = {}
    lines = (Path(root) / "keypoints.csv").read_text().splitlines()[1:]
    for line in lines:
        name, *vals = line.split(",")
        out[name] = np.asarray(vals, dtype=np.float32).reshape(NUM_KEYPOINTS, 3)
    return out
