"""Flat (pinhole) views re-projected onto a 180-degree equirectangular half sphere (VR180).

Each eye's VR180 frame covers longitude and latitude -90..90 degrees in a square image; the
flat view sits in its centre at the camera's field of view and the rest is black, so a
headset shows the video at its true angular size instead of stretching it over the sphere.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vdp.lift.camera import Intrinsics

#: Largest side of one eye's equirectangular frame (a 4096 x 2048 SBS frame fits H.264 level 5.2).
MAX_EYE_SIDE = 2048


def eye_side(intr: Intrinsics, max_side: int = MAX_EYE_SIDE) -> int:
    """Square side of one eye's 180-degree frame keeping the view's centre resolution (pi * f),
    even and at most `max_side`."""
    side = min(max_side, int(math.pi * max(intr.fx, intr.fy)))
    return max(2, side - side % 2)


def equirect_grid(intr: Intrinsics, side: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """`grid_sample` grid ``[1,side,side,2]`` mapping each equirectangular pixel to the flat view
    (normalised coordinates; points behind the camera map outside, to black)."""
    centres = (torch.arange(side, device=device, dtype=torch.float64) + 0.5) / side * math.pi - math.pi / 2
    lat, lon = torch.meshgrid(centres, centres, indexing="ij")  # rows: latitude (down positive)
    x = torch.cos(lat) * torch.sin(lon)
    y = torch.sin(lat)
    z = torch.cos(lat) * torch.cos(lon)
    front = z > 1e-6
    zs = torch.where(front, z, torch.ones_like(z))
    u = intr.fx * x / zs + intr.cx  # pixel coordinates, pixel centres at +0.5
    v = intr.fy * y / zs + intr.cy
    gx = torch.where(front, u / intr.width * 2 - 1, torch.full_like(u, 3.0))
    gy = torch.where(front, v / intr.height * 2 - 1, torch.full_like(v, 3.0))
    return torch.stack([gx, gy], dim=-1).unsqueeze(0).float()


def to_equirect(views: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Resample uint8 views ``[T,3,H,W]`` onto the equirectangular `grid`: uint8 ``[T,3,S,S]``."""
    if views.dtype != torch.uint8 or views.ndim != 4:
        raise ValueError(f"views must be uint8 [T,3,H,W], got {views.dtype} {tuple(views.shape)}")
    g = grid.to(views.device).expand(views.shape[0], -1, -1, -1)
    out = F.grid_sample(views.float(), g, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8)
