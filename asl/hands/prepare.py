"""A photo → what the model reads, following the :class:`~asl.inputs.InputSpec`.

One road for every command: photos are decoded by :func:`read_pixels` (the hand-crop cache's own
decoder, from :mod:`asl.hands.crop`), normalised by :func:`input_transform`, and image and landmarks
are put together by :func:`assemble`, so the same photo gives the same tensor in training,
evaluation, prediction and explain (tested).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import albumentations as A
import numpy as np
import torch

from asl import resolve_cache_dir
from asl.data.transforms import build_pipeline
from asl.hands.crop import read_pixels
from asl.hands.detect import detect_files
from asl.hands.features import encode
from asl.inputs import InputSpec

__all__ = ["assemble", "find_hands", "input_transform", "landmark_row", "read_pixels"]


def input_transform(spec: InputSpec, transforms: Sequence[dict[str, Any]] | None = None,
                    normalize: bool = True, seed: int | None = None) -> A.Compose:
    """``transforms`` (albumentations specs), then resize to the spec's size and normalise with its mean/std."""
    return build_pipeline(transforms, spec.image_size, spec.mean, spec.std, seed=seed, normalize=normalize)


def landmark_row(hand: dict[str, Any] | None) -> np.ndarray:
    """The landmark row of a hand result (zeros: no hand), in pixel-true proportions (:func:`encode`)."""
    if hand is None:
        return encode(None)
    return encode(hand["landmarks"], hand["handedness"], hand.get("size"), hand.get("world"))


def assemble(image: torch.Tensor | None, landmarks: torch.Tensor | None, spec: InputSpec):
    """The model input for ``spec.inputs``: the image, the landmark row(s), or (image, landmarks)."""
    return {"image": image, "landmarks": landmarks, "image+landmarks": (image, landmarks)}[spec.inputs]


def find_hands(paths: Sequence[str | os.PathLike], spec: InputSpec, cache_dir: str | os.PathLike | None,
               always: bool = False) -> list[dict[str, Any] | None]:
    """Each photo's hand from the (cached) detector when the spec needs hands, or ``always``; else None each."""
    if not (spec.wants_hands or always):
        return [None] * len(paths)
    return detect_files(paths, spec.detector, resolve_cache_dir(cache_dir))
