"""LR-ASPP head of RVM: a 1x1 conv-BN-ReLU branch gated by a global-context sigmoid branch."""
from __future__ import annotations

import torch
from torch import nn


class LRASPP(nn.Module):
    """``aspp1(x) * aspp2(x)`` on the 1/16 feature map.

    Args:
        in_channels: Width of f4 (960 for mobilenetv3, 2048 for resnet50).
        out_channels: Output width (128 / 256).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.aspp1 = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False),
                                   nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))
        self.aspp2 = nn.Sequential(nn.AdaptiveAvgPool2d(1),
                                   nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``[B,C,h,w]`` or ``[B,T,C,h,w]``; returns the same rank with `out_channels`."""
        if x.ndim == 5:
            b, t = x.shape[:2]
            x = x.flatten(0, 1)
            return (self.aspp1(x) * self.aspp2(x)).unflatten(0, (b, t))
        return self.aspp1(x) * self.aspp2(x)
