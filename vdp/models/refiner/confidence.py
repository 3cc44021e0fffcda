"""Confidence of a teacher depth window, derived from the teacher alone.

Video Depth Anything reports no uncertainty, so the refiner derives one per window on its
low-resolution grid from two cues where depth models are known to be unreliable:

* temporal instability: the standard deviation over the window's frames of log depth at the
  location (flicker, or real motion: both mean "do not trust a single frame here");
* depth edges: the spatial gradient magnitude of the window's mean log depth (mixed pixels,
  shimmering boundaries).

``c = exp(-std_t / TEMPORAL_SCALE) * exp(-|grad| / EDGE_SCALE)`` lies in (0, 1]: 1 on steady
smooth surfaces, near 0 at flickering edges. The refiner is trained with and without it
(without: the channel is all ones and a flag says so), so it works either way.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: Temporal std of log depth (about 5 %) at which confidence falls to 1/e.
TEMPORAL_SCALE = 0.05
#: Log-depth step between neighbouring low-res pixels at which confidence falls to 1/e.
EDGE_SCALE = 0.25


def low_res_size(height: int, width: int, downsample: int) -> tuple[int, int]:
    """The refiner's working grid for a ``height x width`` teacher."""
    return max(1, round(height / downsample)), max(1, round(width / downsample))


def downsample_log_depth(depth: torch.Tensor, downsample: int) -> torch.Tensor:
    """Area-average log depth onto the low-res grid.

    Args:
        depth: Positive depth ``[B, T, H, W]``.
        downsample: Factor.

    Returns:
        Log depth ``[B, T, h, w]``.
    """
    b, t, hh, ww = depth.shape
    size = low_res_size(hh, ww, downsample)
    ell = torch.log(depth.clamp_min(1e-6)).reshape(b * t, 1, hh, ww)
    return F.adaptive_avg_pool2d(ell, size).reshape(b, t, *size)


def gradient_magnitude(x: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """Central-difference gradient magnitude over the last two dims (0 on the border rows and
    columns); `eps` inside the square root keeps its gradient finite at 0."""
    gy = torch.zeros_like(x)
    gx = torch.zeros_like(x)
    if x.shape[-2] > 2:
        gy[..., 1:-1, :] = 0.5 * (x[..., 2:, :] - x[..., :-2, :])
    if x.shape[-1] > 2:
        gx[..., 1:-1] = 0.5 * (x[..., 2:] - x[..., :-2])
    sq = gx * gx + gy * gy
    return torch.sqrt(sq + eps if eps else sq)


def confidence_from_log_depth(ell_low: torch.Tensor) -> torch.Tensor:
    """Confidence ``[B, T, h, w]`` from low-res log depth ``[B, T, h, w]`` (same for every t)."""
    std_t = ell_low.std(dim=1, unbiased=False, keepdim=True) if ell_low.shape[1] > 1 \
        else torch.zeros_like(ell_low[:, :1])
    mean = ell_low.mean(dim=1, keepdim=True)
    grad = gradient_magnitude(mean)
    conf = torch.exp(-std_t / TEMPORAL_SCALE - grad / EDGE_SCALE)
    return conf.expand_as(ell_low)


def derive_confidence(depth: torch.Tensor, downsample: int) -> torch.Tensor:
    """Confidence ``[B, T, h, w]`` of a teacher window ``[B, T, H, W]`` (positive depth)."""
    return confidence_from_log_depth(downsample_log_depth(depth, downsample))
