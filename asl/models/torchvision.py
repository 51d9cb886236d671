"""Any torchvision classification model as a list of stages, with offline-safe pretrained weights.

Every torchvision classification model name is registered, so a new torchvision backbone needs
only a YAML file in ``asl/conf/model/``.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from asl import ASLError
from asl.models.batchnorm import pretrained_bn_mode
from asl.models.classifier import Classifier, build_classifier, load_weights_file, split_by_stride
from asl.models.registry import register_model


def torchvision_names() -> list[str]:
    return sorted(torchvision.models.list_models(module=torchvision.models))


def resolve_weights(arch: str, pretrained: str | None):
    """``None`` → no weights; ``imagenet`` → the arch's DEFAULT enum; else an enum name such as IMAGENET1K_V1."""
    if not pretrained:
        return None
    enum = torchvision.models.get_model_weights(arch)
    if str(pretrained).lower() == "imagenet":
        return enum.DEFAULT
    try:
        return enum[str(pretrained)]
    except KeyError:
        raise ASLError(f"model.pretrained: {arch} has no weights {pretrained!r}; choose imagenet or one of {[w.name for w in enum]}") from None


def weights_cache_file(weights) -> Path:
    """Where torchvision looks for (and would download) this weights file: $TORCH_HOME/hub/checkpoints/."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def load_torchvision(arch: str, pretrained: str | None = None, weights_path: str | None = None) -> nn.Module:
    """Build ``arch``; weights from the TORCH_HOME cache (never the network) or a local file."""
    weights = resolve_weights(arch, pretrained)
    if weights is not None and weights_path is None:
        cached = weights_cache_file(weights)
        if not cached.exists():
            raise ASLError(
                f"model.pretrained={pretrained}: the weights file {cached.name} is not in the torch cache and this "
                f"machine may not download it. Copy it to {cached} (from {weights.url}), set TORCH_HOME to a "
                f"folder whose hub/checkpoints/ holds it, or pass model.weights_path=/path/to/{cached.name}."
            )
        try:
            return torchvision.models.get_model(arch, weights=weights)
        except RuntimeError as e:
            detail = " ".join(str(e).split())[:300]
            raise ASLError(f"{cached}: not a valid {arch} weights file ({detail}); delete it and copy it again.") from None
    model = torchvision.models.get_model(arch, weights=None)
    if weights_path is not None:
        load_weights_file(model, weights_path, arch)
    return model


def torchvision_stages(arch: str, model: nn.Module) -> list[nn.Module]:
    """Split a torchvision model's feature extractor into stages, input side first.

    ResNet-style (``layer1..4``): stem, layer1, …, layer4. VGG-style (``features`` with max-pools):
    one stage per pooling block. Other ``features`` models (MobileNet, EfficientNet, ConvNeXt):
    one stage per output stride (MobileNetV2: 2, 4, 8, 16, 32).
    """
    if all(hasattr(model, f"layer{i}") for i in range(1, 5)):
        stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
        return [stem, model.layer1, model.layer2, model.layer3, model.layer4]
    features = getattr(model, "features", None)
    if isinstance(features, nn.Sequential):
        children = list(features.children())
        if any(isinstance(m, nn.MaxPool2d) for m in children):
            stages, block = [], []
            for m in children:
                block.append(m)
                if isinstance(m, nn.MaxPool2d):
                    stages.append(nn.Sequential(*block))
                    block = []
            if block:
                stages.append(nn.Sequential(*block))
            return stages
        return split_by_stride(children)
    raise ASLError(f"model.name={arch}: cannot split this torchvision model into stages; use a ResNet, VGG, MobileNet, EfficientNet or ConvNeXt")


def create_torchvision(arch: str, num_classes: int, pretrained: str | None = None, weights_path: str | None = None,
                       input_size: int = 64, trainable_stages: int | str = "all", head: dict[str, Any] | None = None,
                       pretrained_bn: str = "eval") -> Classifier:
    """``model=<arch>``: the torchvision model's stages (weights as :func:`load_torchvision` finds them) + our head."""
    bn = pretrained_bn_mode(pretrained_bn, bool(pretrained or weights_path))
    stages = torchvision_stages(arch, load_torchvision(arch, pretrained, weights_path))
    return build_classifier(arch, stages, num_classes, input_size, head, trainable_stages, bn)


for _arch in torchvision_names():
    register_model(_arch)(partial(create_torchvision, _arch))
