"""ResNet-50 encoder of RVM, laid out like torchvision's ``ResNet`` with ``Bottleneck`` blocks.

Keys are torchvision's (``conv1``, ``bn1``, ``layer{1..4}.{i}.conv1..bn3``, ``.downsample.{0,1}``).
``layer4`` is dilated instead of strided (``replace_stride_with_dilation=[False, False, True]``),
so f4 stays at 1/16. The stride sits on the 3x3 conv ("v1.5"). BatchNorm eps is 1e-5.
The input is NOT normalised: raw [0,1] RGB goes into ``conv1``, as in the official model.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (stride, dilation) -> 1x1 expand (x4), plus identity or ``downsample``."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + identity)


def _make_layer(in_channels: int, planes: int, blocks: int, stride: int, dilation: int,
                first_dilation: int) -> nn.Sequential:
    """One stage; the first block carries the stride (or not, when dilated) and the projection."""
    out_channels = planes * Bottleneck.expansion
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                   nn.BatchNorm2d(out_channels))
    layers = [Bottleneck(in_channels, planes, stride, first_dilation, downsample)]
    layers += [Bottleneck(out_channels, planes, 1, dilation) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNet50Encoder(nn.Module):
    """ResNet-50 feature extractor returning four scales.

    Returns ``[f1, f2, f3, f4]`` with 64 (1/2, before the max-pool), 256 (1/4), 512 (1/8) and
    2048 (1/16) channels, each ``[B,C,h,w]`` or ``[B,T,C,h,w]`` like the input.
    """

    #: Channels of f1..f4.
    channels: tuple[int, int, int, int] = (64, 256, 512, 2048)

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = _make_layer(64, 64, 3, stride=1, dilation=1, first_dilation=1)
        self.layer2 = _make_layer(256, 128, 4, stride=2, dilation=1, first_dilation=1)
        self.layer3 = _make_layer(512, 256, 6, stride=2, dilation=1, first_dilation=1)
        # Dilated instead of strided: stride 1, first block dilation 1, the others 2.
        self.layer4 = _make_layer(1024, 512, 3, stride=1, dilation=2, first_dilation=1)

    def _forward_frames(self, x: torch.Tensor) -> list[torch.Tensor]:
        f1 = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(f1, 3, 2, 1)
        f2 = self.layer1(x)
        f3 = self.layer2(f2)
        f4 = self.layer4(self.layer3(f3))
        return [f1, f2, f3, f4]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.ndim == 5:
            b, t = x.shape[:2]
            return [f.unflatten(0, (b, t)) for f in self._forward_frames(x.flatten(0, 1))]
        return self._forward_frames(x)
