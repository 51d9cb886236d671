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

from asl import ASLError
from asl.inputs import IMAGENET_MEAN, IMAGENET_STD
from asl.targets import DEVICE_TRANSFORMS, TRANSFORMS, build


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
    its device (:meth:`asl.lit.module.ASLClassifier.normalize`): the training loader does this, so
    its workers skip the float conversion and a batch moves a quarter of the bytes.
    """
    steps = [
        *_instantiate(specs, "data transforms (data.background, train_transforms, eval_transforms)", TRANSFORMS + DEVICE_TRANSFORMS,
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


def _instantiate(specs: Sequence[dict[str, Any]] | None, key: str, allowed: Sequence[str], kind: type | tuple[type, ...],
                 what: str) -> list[Any]:
    """Build each ``{_target_: ..., ...}`` spec (targets only from ``allowed``); each must be a ``kind``."""
    steps = []
    for spec in specs or []:
        step = build(spec, key, allowed)
        if not isinstance(step, kind):
            raise ASLError(f"{key}: {spec.get('_target_', spec)} is not {what}")
        steps.append(step)
    return steps


class DeviceAugment(torch.nn.Module):
    """kornia augmentations applied to whole uint8 training batches where the model runs.

    Why: once the image cache has removed decoding, per-image augmentation (albumentations) is most
    of a loader worker's time; here the workers only read the cache and a GPU augments the batch
    with tensor ops. For GPUs: on a CPU kornia costs more than albumentations
    (experiments/benchmarks/README.md). Each image gets its own random draw (kornia's default ``same_on_batch=False``) from
    torch's global generator, which :class:`asl.lit.resume.EpochSeed` reseeds every epoch, so runs
    stay reproducible and resumable. uint8 in, uint8 out: the model normalises as usual.
    """

    def __init__(self, specs: Sequence[dict[str, Any]]):
        super().__init__()
        self.steps = torch.nn.Sequential(*_instantiate(
            specs, "data.device_transforms", DEVICE_TRANSFORMS + TRANSFORMS, torch.nn.Module,
            "a kornia augmentation (albumentations ones go in data.train_transforms)"))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.steps(images.float().div_(255))
        return x.mul_(255).round_().clamp_(0, 255).to(torch.uint8)
