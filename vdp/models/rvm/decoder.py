"""Recurrent decoder of RVM: ConvGRU-gated upsampling from 1/16 back to the input size.

Every block accepts ``[B,C,H,W]`` (one frame per sample) or ``[B,T,C,H,W]`` (a clip); the
ConvGRUs walk the time axis frame by frame inside a call. Recurrent states are always 4-D
``[B,C,h,w]``; ``None`` means zeros.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _upsample2x(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class AvgPool(nn.Module):
    """Image pyramid: three 2x2 average pools (ceil mode, overhang averages existing pixels)."""

    def __init__(self) -> None:
        super().__init__()
        self.avgpool = nn.AvgPool2d(2, 2, count_include_pad=False, ceil_mode=True)

    def forward(self, s0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """s0: ``[B,(T,)3,H,W]``; returns s1, s2, s3 at 1/2, 1/4, 1/8 (same rank)."""
        lead = s0.shape[:-3]
        x = s0.flatten(0, 1) if s0.ndim == 5 else s0
        s1 = self.avgpool(x)
        s2 = self.avgpool(s1)
        s3 = self.avgpool(s2)
        if s0.ndim == 5:
            return s1.unflatten(0, lead), s2.unflatten(0, lead), s3.unflatten(0, lead)
        return s1, s2, s3


class ConvGRU(nn.Module):
    """Convolutional GRU: ``[r, z] = sigmoid(ih([x, h]))``, ``c = tanh(hh([x, r*h]))``,
    ``h' = (1-z)*h + z*c``.

    Args:
        channels: Width of the input and of the hidden state.
    """

    def __init__(self, channels: int, kernel_size: int = 3, padding: int = 1) -> None:
        super().__init__()
        self.channels = channels
        self.ih = nn.Sequential(nn.Conv2d(channels * 2, channels * 2, kernel_size, padding=padding),
                                nn.Sigmoid())
        self.hh = nn.Sequential(nn.Conv2d(channels * 2, channels, kernel_size, padding=padding),
                                nn.Tanh())

    def _step(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        r, z = self.ih(torch.cat([x, h], dim=1)).split(self.channels, dim=1)
        c = self.hh(torch.cat([x, r * h], dim=1))
        return (1 - z) * h + z * c

    def forward(self, x: torch.Tensor, h: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """x: ``[B,C,h,w]`` or ``[B,T,C,h,w]``; h: ``[B,C,h,w]`` or None.

        Returns:
            The outputs (same shape as x: the hidden state after each frame) and the last state.
        """
        if h is None:
            h = torch.zeros((x.shape[0], *x.shape[-3:]), device=x.device, dtype=x.dtype)
        if x.ndim == 5:
            outs = []
            for xt in x.unbind(dim=1):
                h = self._step(xt, h)
                outs.append(h)
            return torch.stack(outs, dim=1), h
        h = self._step(x, h)
        return h, h


class BottleneckBlock(nn.Module):
    """The 1/16 block: the second half of the channels runs through a ConvGRU (state r4)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.gru = ConvGRU(channels // 2)

    def forward(self, x: torch.Tensor, r: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = x.split(self.channels // 2, dim=-3)
        b, r = self.gru(b, r)
        return torch.cat([a, b], dim=-3), r


class UpsamplingBlock(nn.Module):
    """Upsample x2, crop to the skip size, concat [x, skip feature, pooled image], conv-BN-ReLU,
    then a ConvGRU on the second half of the channels.

    Args:
        in_channels: Width of the coarser decoder output.
        skip_channels: Width of the encoder feature at this scale.
        src_channels: Width of the pooled image (3).
        out_channels: Output width.
    """

    def __init__(self, in_channels: int, skip_channels: int, src_channels: int, out_channels: int) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels + skip_channels + src_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))
        self.gru = ConvGRU(out_channels // 2)

    def forward(self, x: torch.Tensor, f: torch.Tensor, s: torch.Tensor,
                r: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        lead = s.shape[:-3]
        if s.ndim == 5:
            x, f, s = x.flatten(0, 1), f.flatten(0, 1), s.flatten(0, 1)
        h, w = s.shape[-2:]
        x = _upsample2x(x)[:, :, :h, :w]
        x = self.conv(torch.cat([x, f, s], dim=1))
        if len(lead) == 2:
            x = x.unflatten(0, lead)
        a, b = x.split(self.out_channels // 2, dim=-3)
        b, r = self.gru(b, r)
        return torch.cat([a, b], dim=-3), r


class OutputBlock(nn.Module):
    """Upsample x2, crop to the image, concat with it, then two conv-BN-ReLU (no recurrence)."""

    def __init__(self, in_channels: int, src_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels + src_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        lead = s.shape[:-3]
        if s.ndim == 5:
            x, s = x.flatten(0, 1), s.flatten(0, 1)
        h, w = s.shape[-2:]
        x = _upsample2x(x)[:, :, :h, :w]
        x = self.conv(torch.cat([x, s], dim=1))
        return x.unflatten(0, lead) if len(lead) == 2 else x


class RecurrentDecoder(nn.Module):
    """Decoder from the four encoder features (f4 after LR-ASPP) to a 16-channel hidden map.

    Args:
        feature_channels: Widths of f1, f2, f3 and the ASPP output.
        decoder_channels: Output widths of decode3, decode2, decode1, decode0.
    """

    def __init__(self, feature_channels: list[int], decoder_channels: list[int]) -> None:
        super().__init__()
        self.avgpool = AvgPool()
        self.decode4 = BottleneckBlock(feature_channels[3])
        self.decode3 = UpsamplingBlock(feature_channels[3], feature_channels[2], 3, decoder_channels[0])
        self.decode2 = UpsamplingBlock(decoder_channels[0], feature_channels[1], 3, decoder_channels[1])
        self.decode1 = UpsamplingBlock(decoder_channels[1], feature_channels[0], 3, decoder_channels[2])
        self.decode0 = OutputBlock(decoder_channels[2], 3, decoder_channels[3])

    def forward(self, s0: torch.Tensor, f1: torch.Tensor, f2: torch.Tensor, f3: torch.Tensor,
                f4: torch.Tensor, r1: torch.Tensor | None, r2: torch.Tensor | None,
                r3: torch.Tensor | None, r4: torch.Tensor | None) -> list[torch.Tensor]:
        """Returns ``[hidden, r1, r2, r3, r4]``; hidden has the rank and size of `s0`, 16 channels."""
        s1, s2, s3 = self.avgpool(s0)
        x4, r4 = self.decode4(f4, r4)
        x3, r3 = self.decode3(x4, f3, s3, r3)
        x2, r2 = self.decode2(x3, f2, s2, r2)
        x1, r1 = self.decode1(x2, f1, s1, r1)
        x0 = self.decode0(x1, s0)
        return [x0, r1, r2, r3, r4]


class Projection(nn.Module):
    """1x1 conv head (with bias), applied per frame."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``[B,C,H,W]`` or ``[B,T,C,H,W]``; returns the same rank with `out_channels`."""
        if x.ndim == 5:
            return self.conv(x.flatten(0, 1)).unflatten(0, x.shape[:2])
        return self.conv(x)
