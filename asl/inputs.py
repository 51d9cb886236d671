"""The input contract: what a model reads, decided in one place (as timm's ``resolve_data_config``).

:class:`InputSpec` owns the input size, normalisation, which inputs (image, landmarks or both),
hand crops, what to do without a hand, and the hand detector's settings, with their only
defaults. Training saves it in the checkpoint; evaluation, prediction, export and explain rebuild
it from there, so a photo is prepared the same way everywhere
(:func:`asl.hands.prepare.read_pixels`, :func:`asl.hands.prepare.input_transform`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from asl import ASLError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUTS = ("image", "landmarks", "image+landmarks")  # what a model reads (model.inputs)
NO_HAND = ("keep", "drop", "fail")  # photos without a hand: whole photo / zero landmarks, skip, error
HAND_SOURCES = ("auto", "keypoints", "detector")  # auto: root/keypoints.csv if present, else the detector

#: The hand detector's settings (data.hands.*, asl/conf/data/hands/default.yaml mirrors them).
DETECTOR_DEFAULTS: dict[str, Any] = {
    "padding": 0.25,  # black border added on each side, as a fraction of the longer side
    "min_confidence": 0.3,  # MediaPipe min_detection_confidence
    "model_complexity": 1,  # 0 (lite) or 1 (full) landmark model
    # Tried in order while no hand is found: the mirrored photo, the 2x up-scaled photo, or a
    # mapping of settings to try instead (the lite model with a wide border finds most hands
    # that the full model misses in room photos: experiments/hands/README.md).
    "retry": ["mirror", "upscale", {"model_complexity": 0, "padding": 0.75}, {"padding": 1.0}],
    "max_side": 512,  # photos are shrunk to at most this side before detection (speed)
}
RETRIES = ("mirror", "upscale")  # named retries; a mapping retry sets some of RETRY_KEYS instead
RETRY_KEYS = ("padding", "min_confidence", "model_complexity")


def check_detector(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """Detector settings with defaults filled in and values checked (ASLError names the ``data.hands.*`` key)."""
    s = {**DETECTOR_DEFAULTS, **(settings or {})}
    unknown = sorted(set(s) - set(DETECTOR_DEFAULTS))
    if unknown:
        raise ASLError(f"data.hands: unknown detector option(s) {unknown}; known: {sorted(DETECTOR_DEFAULTS)}")
    _check_values(s, "data.hands")
    retries = []
    for r in s["retry"] or []:
        if isinstance(r, Mapping):
            r = dict(r)
            unknown = sorted(set(r) - set(RETRY_KEYS))
            if unknown or not r:
                raise ASLError(f"data.hands.retry: a settings retry may set {list(RETRY_KEYS)}, got {sorted(r)}")
            _check_values(r, "data.hands.retry")
        elif r not in RETRIES:
            raise ASLError(f"data.hands.retry: unknown retry {r!r}; use {list(RETRIES)} or a mapping of {list(RETRY_KEYS)}")
        retries.append(r)
    s["retry"] = retries
    return s


def _check_values(s: Mapping[str, Any], where: str) -> None:
    if "padding" in s and not 0 <= float(s["padding"]) <= 1:
        raise ASLError(f"{where}.padding must be in [0, 1], got {s['padding']}")
    if "min_confidence" in s and not 0 <= float(s["min_confidence"]) <= 1:
        raise ASLError(f"{where}.min_confidence must be in [0, 1], got {s['min_confidence']}")
    if "model_complexity" in s and s["model_complexity"] not in (0, 1):
        raise ASLError(f"{where}.model_complexity must be 0 or 1, got {s['model_complexity']}")
    if "max_side" in s and int(s["max_side"]) < 32:
        raise ASLError(f"{where}.max_side must be at least 32 pixels, got {s['max_side']}")


@dataclass(frozen=True)
class InputSpec:
    """What a model reads, and how a photo becomes it. Plain values only: it is saved in checkpoints."""

    image_size: int = 64  # side of the square model input (model.input_size)
    mean: tuple[float, ...] = IMAGENET_MEAN  # per-channel normalisation, as the (pretrained) weights expect
    std: tuple[float, ...] = IMAGENET_STD
    inputs: str = "image"  # image | landmarks | image+landmarks (model.inputs)
    hand_crop: bool = False  # cut every photo to the square box around its hand (data.hand_crop)
    no_hand: str = "keep"  # photos without a hand: keep | drop | fail (data.no_hand)
    margin: float = 0.2  # hand crop border, fraction of the hand box's longer side (data.hands.margin)
    # Hand crops only: everything outside the hand's landmark hull, widened by this fraction of the hand box's
    # longer side, is painted the normalisation mean (a zero input), in training and at test time (data.hand_blank).
    hand_blank: float | None = None
    hand_source: str = "auto"  # auto | keypoints | detector (data.hands.source)
    detector: dict[str, Any] = field(default_factory=lambda: check_detector(None))  # data.hands.* detector settings

    def __post_init__(self) -> None:
        if not isinstance(self.image_size, int) or self.image_size < 8:
            raise ASLError(f"model.input_size must be a whole number of pixels ≥ 8, got {self.image_size!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ASLError(f"model.mean/std: three values each, std > 0; got {list(self.mean)} / {list(self.std)}")
        if self.inputs not in INPUTS:
            raise ASLError(f"model.inputs: {self.inputs!r} is not one of {INPUTS}")
        if self.no_hand not in NO_HAND:
            raise ASLError(f"data.no_hand: {self.no_hand!r} is not one of {NO_HAND}")
        if self.hand_source not in HAND_SOURCES:
            raise ASLError(f"data.hands.source: {self.hand_source!r} is not one of {HAND_SOURCES}")
        if not 0 <= float(self.margin) <= 2:
            raise ASLError(f"data.hands.margin must be in [0, 2], got {self.margin}")
        if self.hand_blank is not None:
            if isinstance(self.hand_blank, bool) or not isinstance(self.hand_blank, int | float) or not 0 <= self.hand_blank <= 1:
                raise ASLError(f"data.hand_blank: a widening in [0, 1] (e.g. 0.1) or null, got {self.hand_blank!r}")
            if not self.hand_crop:
                raise ASLError("data.hand_blank blanks around the hand in its crop: set data.hand_crop=true too")
            object.__setattr__(self, "hand_blank", float(self.hand_blank))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        object.__setattr__(self, "detector", check_detector(self.detector))

    @property
    def wants_hands(self) -> bool:
        """Whether photos need their hand found (for crops or landmarks)."""
        return self.hand_crop or self.inputs != "image"

    def to_dict(self) -> dict[str, Any]:
        """Primitive values (lists, not tuples) for a checkpoint's hyper-parameters."""
        d = dataclasses.asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> InputSpec:
        return cls(**dict(d))


def resolve_input_spec(model: Mapping[str, Any], data: Mapping[str, Any]) -> InputSpec:
    """The one place that reads the contract from a composed config: ``model.input_size``,
    ``model.inputs`` (and ``model.mean``/``std`` where weights bring their own), ``data.hand_crop``,
    ``data.hand_blank``, ``data.no_hand`` and ``data.hands.*``. Unset keys take :class:`InputSpec`'s defaults."""
    hands = dict(data.get("hands") or {})
    hands.pop("workers", None)  # how many detector processes: not part of what the model reads
    given = {
        "image_size": model.get("input_size"), "mean": model.get("mean"), "std": model.get("std"),
        "inputs": model.get("inputs"), "hand_crop": data.get("hand_crop"), "no_hand": data.get("no_hand"),
        "hand_blank": data.get("hand_blank"),
        "margin": hands.pop("margin", None), "hand_source": hands.pop("source", None), "detector": hands or None,
    }
    return InputSpec(**{k: v for k, v in given.items() if v is not None})
