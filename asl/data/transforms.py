"""albumentations pipelines from config: uint8 HWC image (+ optional mask) in, normalised tensor out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import albumentations as A
from albumentations.pytorch import ToTensorV2
from hydra.utils import instantiate

from asl import ASLError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_pipeline(
    specs: Sequence[dict[str, Any]] | None,
    image_size: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    seed: int | None = None,
    normalize: bool = True,
) -> A.Compose:
    """Instantiate each ``{_target_: albumentations.X, ...}`` spec, then resize, normalise and tensorise.

    Normalize comes before ToTensorV2 because ToTensorV2 does not scale to [0, 1]. With
    ``normalize=False`` the output stays a uint8 (3, H, W) tensor and the model normalises it on
    its device (:meth:`asl.module.ASLClassifier.normalize`): the training loader does this, so
    its workers skip the float conversion and a batch moves a quarter of the bytes.
    """
    steps = []
    for spec in specs or []:
        try:
            steps.append(instantiate(spec, _convert_="all"))
        except Exception as e:  # a wrong class name or argument in the YAML
            target = spec.get("_target_", "?") if hasattr(spec, "get") else spec
            raise ASLError(f"data transforms: cannot build {target} from {dict(spec)}: {e}") from None
    steps += [
        A.Resize(height=image_size, width=image_size),
        *([A.Normalize(mean=tuple(mean), std=tuple(std), max_pixel_value=255.0)] if normalize else []),
        ToTensorV2(),
    ]
    return A.Compose(steps, seed=seed)
