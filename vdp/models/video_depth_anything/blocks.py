"""DPT decoder blocks: residual conv units, feature fusion and the "scratch" convs."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResidualConvUnit(nn.Module):
    """relu -> conv3x3 [-> bn] -> relu -> conv3x3 [-> bn], plus the input.

    Args:
        features: Channel count.
        use_bn: Whether each conv is followed by BatchNorm.
    """

    def __init__(self, features: int, use_bn: bool = False) -> None:
        super().__init__()
        self.use_bn = use_bn
        self.conv1 = nn.Conv2d(features, features, kernel_size=3, padding=1, bias=True)
        self.conv2 = nn.Conv2d(features, features, kernel_size=3, padding=1, bias=True)
        if use_bn:
            self.bn1 = nn.BatchNorm2d(features)
            self.bn2 = nn.BatchNorm2d(features)
        self.activation = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x [N,C,H,W]. Returns: [N,C,H,W]."""
        out = self.conv1(self.activation(x))
        if self.use_bn:
            out = self.bn1(out)
        out = self.conv2(self.activation(out))
        if self.use_bn:
            out = self.bn2(out)
        return out + x


class FeatureFusionBlock(nn.Module):
    """Fuses a decoder path with an optional skip input, then upsamples.

    ``out = out_conv(resize(RCU2(x + RCU1(skip))))``; the resize is bilinear with
    align_corners=True, to ``size`` when given, else x2.

    Args:
        features: Channel count.
        use_bn: BatchNorm inside the residual units.
    """

    def __init__(self, features: int, use_bn: bool = False) -> None:
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, kernel_size=1, bias=True)
        self.resConfUnit1 = ResidualConvUnit(features, use_bn)
        self.resConfUnit2 = ResidualConvUnit(features, use_bn)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None,
                size: tuple[int, int] | None = None) -> torch.Tensor:
        """Args: x [N,C,h,w]; skip [N,C,h,w] or None; size target (H, W) or None for x2.

        Returns: [N,C,H,W].
        """
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        if size is None:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)
        else:
            x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)
        return self.out_conv(x)


def make_scratch(in_channels: list[int], features: int) -> nn.Module:
    """The container of the head's 3x3 ``layerN_rn`` convs (no bias) to ``features`` channels.

    The fusion blocks and output convs are attached to it by the head.

    Args:
        in_channels: Channels of the four pyramid levels.
        features: Decoder width.

    Returns:
        A module with ``layer1_rn`` .. ``layer4_rn``.
    """
    scratch = nn.Module()
    for i, c in enumerate(in_channels, start=1):
        setattr(scratch, f"layer{i}_rn", nn.Conv2d(c, features, kernel_size=3, padding=1, bias=False))
    return scratch
