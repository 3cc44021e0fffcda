"""MobileNetV3-Large encoder of RVM, laid out like torchvision's ``MobileNetV3``.

State-dict keys are torchvision's (``features.{i}...``), so an official RVM checkpoint loads
strictly. The last stage (``features.13-15``) is dilated (dilation 2, stride forced to 1),
so the deepest feature map stays at 1/16. Every BatchNorm uses eps 1e-3 as in torchvision.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-3
BN_MOMENTUM = 0.01
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round `value` to a multiple of `divisor`, never going more than 10 % below it."""
    out = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if out < 0.9 * value:
        out += divisor
    return out


@dataclass(frozen=True)
class BlockConfig:
    """One inverted-residual block: widths, depthwise kernel, SE, activation, stride, dilation."""

    in_channels: int
    kernel: int
    expanded: int
    out_channels: int
    use_se: bool
    hardswish: bool
    stride: int
    dilation: int


#: MobileNetV3-Large blocks as RVM builds them (torchvision's table with the C4 stage dilated).
LARGE_BLOCKS: tuple[BlockConfig, ...] = (
    BlockConfig(16, 3, 16, 16, False, False, 1, 1),
    BlockConfig(16, 3, 64, 24, False, False, 2, 1),
    BlockConfig(24, 3, 72, 24, False, False, 1, 1),
    BlockConfig(24, 5, 72, 40, True, False, 2, 1),
    BlockConfig(40, 5, 120, 40, True, False, 1, 1),
    BlockConfig(40, 5, 120, 40, True, False, 1, 1),
    BlockConfig(40, 3, 240, 80, False, True, 2, 1),
    BlockConfig(80, 3, 200, 80, False, True, 1, 1),
    BlockConfig(80, 3, 184, 80, False, True, 1, 1),
    BlockConfig(80, 3, 184, 80, False, True, 1, 1),
    BlockConfig(80, 3, 480, 112, True, True, 1, 1),
    BlockConfig(112, 3, 672, 112, True, True, 1, 1),
    BlockConfig(112, 5, 672, 160, True, True, 2, 2),
    BlockConfig(160, 5, 960, 160, True, True, 1, 2),
    BlockConfig(160, 5, 960, 160, True, True, 1, 2),
)


class ConvBNActivation(nn.Sequential):
    """Conv (no bias) -> BatchNorm(eps 1e-3) -> optional activation; keys ``0.*``, ``1.*``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1, dilation: int = 1, activation: type[nn.Module] | None = None) -> None:
        padding = (kernel_size - 1) // 2 * dilation
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation=dilation,
                      groups=groups, bias=False),
            nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM),
        ]
        if activation is not None:
            layers.append(activation())
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """Channel gate: global mean -> fc1 -> ReLU -> fc2 -> hardsigmoid -> multiply."""

    def __init__(self, channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = F.adaptive_avg_pool2d(x, 1)
        scale = F.hardsigmoid(self.fc2(F.relu(self.fc1(scale))))
        return scale * x


class InvertedResidual(nn.Module):
    """Expand (1x1, if widths differ) -> depthwise -> SE (optional) -> project (1x1), in ``block``."""

    def __init__(self, cfg: BlockConfig) -> None:
        super().__init__()
        act = nn.Hardswish if cfg.hardswish else nn.ReLU
        self.use_residual = cfg.stride == 1 and cfg.in_channels == cfg.out_channels
        layers: list[nn.Module] = []
        if cfg.expanded != cfg.in_channels:
            layers.append(ConvBNActivation(cfg.in_channels, cfg.expanded, 1, activation=act))
        stride = 1 if cfg.dilation > 1 else cfg.stride
        layers.append(ConvBNActivation(cfg.expanded, cfg.expanded, cfg.kernel, stride,
                                       groups=cfg.expanded, dilation=cfg.dilation, activation=act))
        if cfg.use_se:
            layers.append(SqueezeExcitation(cfg.expanded, make_divisible(cfg.expanded // 4, 8)))
        layers.append(ConvBNActivation(cfg.expanded, cfg.out_channels, 1))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.use_residual else out


class MobileNetV3LargeEncoder(nn.Module):
    """MobileNetV3-Large feature extractor returning four scales.

    Input is RGB in [0,1]; it is normalised with ImageNet mean/std inside.
    Returns ``[f1, f2, f3, f4]`` with 16 (1/2), 24 (1/4), 40 (1/8) and 960 (1/16) channels,
    each ``[B,C,h,w]`` or ``[B,T,C,h,w]`` like the input.
    """

    #: Channels of f1..f4.
    channels: tuple[int, int, int, int] = (16, 24, 40, 960)

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBNActivation(3, 16, 3, stride=2, activation=nn.Hardswish)]
        layers += [InvertedResidual(cfg) for cfg in LARGE_BLOCKS]
        last_in = LARGE_BLOCKS[-1].out_channels
        layers.append(ConvBNActivation(last_in, 6 * last_in, 1, activation=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(3, 1, 1), persistent=False)

    def _forward_frames(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        feats = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in (1, 3, 6, 16):
                feats.append(x)
        return feats

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.ndim == 5:
            b, t = x.shape[:2]
            return [f.unflatten(0, (b, t)) for f in self._forward_frames(x.flatten(0, 1))]
        return self._forward_frames(x)
