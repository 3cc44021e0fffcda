"""Flat (pinhole) views re-projected onto a 180-degree equirectangular half sphere (VR180).

Each eye's VR180 frame covers longitude and latitude -90..90 degrees in a square image; the
flat view sits in its centre at the camera's field of view and the rest is black, so a
headset shows the video at its true angular size instead of stretching it over the sphere.
"""
from __future__ import annotations

import math

import numpy as np
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


class EquirectMap:
    """`to_equirect` for one grid and view size, worked out once: the output pixels that see
    the view (a 1080p view at its field of view covers ~9 % of a VR180 eye), and for each its
    four neighbours in the view and their bilinear weights. A frame then costs a few table
    gathers on those pixels (CPU, one frame at a time) instead of float `grid_sample` over the
    whole half sphere; within one level of `to_equirect` (its rounding of exact halves aside).

    Args:
        grid: `equirect_grid` ``[1,S,S,2]``.
        height, width: Size of the flat views it will resample.
    """

    def __init__(self, grid: torch.Tensor, height: int, width: int) -> None:
        g = grid[0].reshape(-1, 2).float()          # float32, as grid_sample computes
        self.side = int(grid.shape[1])
        self.view_size = (height, width)
        px = ((g[:, 0] + 1) * width - 1) / 2      # pixel coordinates (align_corners=False)
        py = ((g[:, 1] + 1) * height - 1) / 2
        near = ((px > -1) & (px < width) & (py > -1) & (py < height)).nonzero()[:, 0]
        px, py = px[near], py[near]                # only these can touch the view
        x0, y0 = px.floor(), py.floor()
        fx, fy = px - x0, py - y0
        index, weight = [], []
        for dy, dx, w in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx),
                          (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
            x, y = x0 + dx, y0 + dy
            inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)  # outside: black (zeros)
            flat = y.long() * width + x.long()    # int64: float32 is exact only to 2^24 pixels
            index.append(torch.where(inside, flat, torch.zeros_like(flat)))
            weight.append(torch.where(inside, w, torch.zeros_like(w)))
        weights = torch.stack(weight)
        seen = (weights > 0).any(dim=0)
        self.seen = near[seen].numpy()            # output pixels that see the view
        self.index = torch.stack(index)[:, seen].to(torch.int32).contiguous()
        self.weight = weights[:, seen].float().numpy().copy()

    def __call__(self, views: torch.Tensor) -> torch.Tensor:
        """uint8 ``[T,3,S,S]`` of uint8 CPU views ``[T,3,H,W]`` (any memory layout)."""
        if views.dtype != torch.uint8 or views.ndim != 4 or tuple(views.shape[-2:]) != self.view_size:
            raise ValueError(f"views must be uint8 [T,3,{self.view_size[0]},{self.view_size[1]}], "
                             f"got {views.dtype} {tuple(views.shape)}")
        t, n = views.shape[0], self.seen.size
        out = np.zeros((t, 3, self.side * self.side), np.uint8)
        gathered, rounded = torch.empty(n, dtype=torch.uint8), np.empty(n, np.uint8)
        acc, term = np.empty(n, np.float32), np.empty(n, np.float32)
        for i in range(t):
            for c in range(3):
                plane = views[i, c].reshape(-1)                  # a copy only if channels-last
                acc.fill(0.5)                                    # truncating x + 0.5 rounds
                for k in range(4):
                    torch.index_select(plane, 0, self.index[k], out=gathered)
                    np.multiply(gathered.numpy(), self.weight[k], out=term)
                    acc += term
                np.copyto(rounded, acc, casting="unsafe")
                out[i, c, self.seen] = rounded
        return torch.from_numpy(out).view(t, 3, self.side, self.side)
