"""Metric depth and relative (inverse, affine-invariant) depth as the refiner's positive input.

Metric depth (Metric Video Depth Anything) is used as is. Relative VDA output is disparity-like
(larger = nearer, >= 0, unknown scale and shift), so the refiner works on a pseudo depth
``p = 1 / (d / m0 + eps)``, where ``m0`` is the median of the stream's first frame (fixed for
the whole stream, so a frame's pseudo depth never depends on batching): ``p`` is about 1 at
the typical depth, grows with distance, is capped at ``1 / eps`` where ``d = 0`` (sky), and a
scale jitter of ``d`` is a scale jitter of ``p``. The refined pseudo depth maps back exactly.
"""
from __future__ import annotations

import torch

#: Cap of the pseudo depth, relative to the stream's typical value (d = 0 maps to 1 / EPS).
EPS = 0.01


def reference_scale(disparity: torch.Tensor) -> float:
    """``m0``: the median of the positive values of one frame (1.0 when none is positive)."""
    pos = disparity[torch.isfinite(disparity) & (disparity > 0)]
    return float(pos.median()) if pos.numel() else 1.0


def to_pseudo_depth(disparity: torch.Tensor, m0: float) -> torch.Tensor:
    """Pseudo depth ``1 / (max(d, 0) / m0 + EPS)`` (non-finite input counts as 0)."""
    d = torch.nan_to_num(disparity.float(), nan=0.0, posinf=0.0, neginf=0.0).clamp_min(0)
    return 1.0 / (d / m0 + EPS)


def from_pseudo_depth(pseudo: torch.Tensor, m0: float) -> torch.Tensor:
    """Inverse of `to_pseudo_depth` (clamped at 0)."""
    return (m0 * (1.0 / pseudo - EPS)).clamp_min(0)
