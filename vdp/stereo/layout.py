"""Packing a stereo pair into one frame: side-by-side and top-bottom, full or half resolution.

Full layouts keep every pixel of both views (``2W x H`` or ``W x 2H``); half layouts squeeze
each view to half width (SBS) or half height (TB) by area averaging, so the packed frame
has the source's size.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

Layout = Literal["sbs_full", "sbs_half", "tb_full", "tb_half"]
LAYOUTS: tuple[str, ...] = ("sbs_full", "sbs_half", "tb_full", "tb_half")


def packed_size(layout: str, height: int, width: int) -> tuple[int, int]:
    """``(height, width)`` of a packed frame for views of ``height x width``."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    return {"sbs_full": (height, 2 * width), "sbs_half": (height, 2 * (width // 2)),
            "tb_full": (2 * height, width), "tb_half": (2 * (height // 2), width)}[layout]


def _squeeze(views: torch.Tensor, height: int, width: int) -> torch.Tensor:
    h, w = views.shape[-2:]
    if (h, w) == (height, width):
        return views
    if views.device.type == "cpu" and (h, w) in ((height, 2 * width), (2 * height, width)):
        return _pair_means(views, along_width=w == 2 * width)
    out = F.interpolate(views.float(), size=(height, width), mode="area")
    return out.round().clamp(0, 255).to(torch.uint8)


def _pair_means(views: torch.Tensor, *, along_width: bool) -> torch.Tensor:
    """Means of neighbouring pixel pairs (along the width or the height) of uint8 views,
    rounded half to even: bit for bit what area interpolation to half the size and `round()`
    give, in integer numpy one frame at a time (~3.6 ms per 1080p view instead of ~54)."""
    src = views.contiguous().numpy()
    t, c, h, w = src.shape
    out = np.empty((t, c, h, w // 2) if along_width else (t, c, h // 2, w), np.uint8)
    for i in range(t):
        if along_width:  # a row's neighbours are one uint16: its two bytes summed
            pairs = src[i].view(np.uint16)
            total = pairs & 0xFF
            total += pairs >> 8
        else:
            total = np.add(src[i, :, 0::2], src[i, :, 1::2], dtype=np.uint16)
        half = total >> 1
        total &= half
        total &= 1                      # x.5 rounds up only from an odd floor (half to even)
        half += total
        out[i] = half
    return torch.from_numpy(out)


def pack_stereo(left: torch.Tensor, right: torch.Tensor, layout: str) -> torch.Tensor:
    """One frame per pair, left view first (left half or top half).

    Args:
        left: ``[T,3,H,W]`` uint8.
        right: ``[T,3,H,W]`` uint8.
        layout: ``sbs_full``, ``sbs_half``, ``tb_full`` or ``tb_half``.

    Returns:
        ``[T,3,H',W']`` uint8 with ``(H',W') = packed_size(layout, H, W)``.
    """
    if left.shape != right.shape or left.ndim != 4 or left.dtype != torch.uint8:
        raise ValueError(f"left and right must be uint8 [T,3,H,W] of one shape, got "
                         f"{left.dtype} {tuple(left.shape)} and {right.dtype} {tuple(right.shape)}")
    h, w = left.shape[-2:]
    ph, pw = packed_size(layout, h, w)
    if layout.startswith("sbs"):
        vh, vw = ph, pw // 2
        return torch.cat([_squeeze(left, vh, vw), _squeeze(right, vh, vw)], dim=3)
    vh, vw = ph // 2, pw
    return torch.cat([_squeeze(left, vh, vw), _squeeze(right, vh, vw)], dim=2)
