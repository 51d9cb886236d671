"""Augmentation pipelines from config.

Per image in the loader workers (albumentations: uint8 HWC image + optional mask in, tensor out),
and per batch on the training device (kornia: whole uint8 batches, a random draw per image).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import albumentations as A
import torch
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
    steps = [
        *_instantiate(specs, "data transforms (data.background, train_transforms, eval_transforms)",
                      (A.BasicTransform, A.BaseCompose), "an albumentations transform (kornia ones go in data.device_transforms)"),
        A.Resize(height=image_size, width=image_size),
        *([A.Normalize(mean=tuple(mean), std=tuple(std), max_pixel_value=255.0)] if normalize else []),
        ToTensorV2(),
    ]
    return A.Compose(steps, seed=seed)


def on_images(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor | tuple | list) -> torch.Tensor | tuple | list:
    """``fn`` on a model input's images: ``x`` itself, or the first of (images, landmarks); landmarks pass unchanged."""
    if isinstance(x, (tuple, list)):
        return type(x)([fn(x[0]), *x[1:]])
    return fn(x)


def _instantiate(specs: Sequence[dict[str, Any]] | None, key: str, kind: type | tuple[type, ...], what: str) -> list[Any]:
    """Build each ``{_target_: ..., ...}`` spec; each must be a ``kind`` (``what`` names it for the user)."""
    steps = []
    for spec in specs or []:
        target = spec.get("_target_", "?") if hasattr(spec, "get") else spec
        try:
            step = instantiate(spec, _convert_="all")
        except Exception as e:  # a wrong class name or argument in the YAML
            raise ASLError(f"{key}: cannot build {target} from {dict(spec)}: {e}") from None
        if not isinstance(step, kind):
            raise ASLError(f"{key}: {target} is not {what}")
        steps.append(step)
    return steps


class DeviceAugment(torch.nn.Module):
    """kornia augmentations applied to whole uint8 training batches where the model runs.

    Why: once the image cache has removed decoding, per-image augmentation (albumentations) is most
    of a loader worker's time; here the workers only read the cache and a GPU augments the batch
    with tensor ops. For GPUs: on a CPU kornia costs more than albumentations
    (experiments/benchmarks/README.md). Each image gets its own random draw (kornia's default ``same_on_batch=False``) from
    torch's global generator, which :class:`asl.reproduce.EpochSeed` reseeds every epoch, so runs
    stay reproducible and resumable. uint8 in, uint8 out: the model normalises as usual.
    """

    def __init__(self, specs: Sequence[dict[str, Any]]):
        super().__init__()
        self.steps = torch.nn.Sequential(*_instantiate(
            specs, "data.device_transforms", torch.nn.Module,
            "a kornia augmentation (albumentations ones go in data.train_transforms)"))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.steps(images.float().div_(255))
        return x.mul_(255).round_().clamp_(0, 255).to(torch.uint8)
