"""Joining windows: least-squares scale/shift against a reference, and the overlap cross-fade."""
from __future__ import annotations

import torch


def fit_scale_shift(prediction: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    """(s, t) minimising sum((s * prediction + t - reference)^2) over all elements.

    Solved with the 2x2 normal equations in float64; a singular system gives (1, 0).

    Args:
        prediction: Any shape.
        reference: Same shape.

    Returns:
        (scale, shift).
    """
    if prediction.shape != reference.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and reference "
                         f"{tuple(reference.shape)} must have the same shape")
    p = prediction.double().flatten()
    r = reference.double().flatten()
    a00, a01, a11 = (p * p).sum(), p.sum(), float(p.numel())
    b0, b1 = (p * r).sum(), r.sum()
    det = float(a00 * a11 - a01 * a01)
    if det == 0.0:
        return 1.0, 0.0
    scale = (a11 * b0 - a01 * b1) / det
    shift = (-a01 * b0 + a00 * b1) / det
    return float(scale), float(shift)


def apply_scale_shift(depth: torch.Tensor, scale: float, shift: float) -> torch.Tensor:
    """``max(scale * depth + shift, 0)`` in float32."""
    s = torch.tensor(scale, dtype=torch.float32, device=depth.device)
    t = torch.tensor(shift, dtype=torch.float32, device=depth.device)
    return (depth.float() * s + t).clamp_min(0.0)


def crossfade(old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """Blend two runs of the same frames [n,H,W]: frame i gets weight i/(n-1) for `new`.

    The first frame is entirely `old`, the last entirely `new`.
    """
    if old.shape != new.shape or old.shape[0] < 2:
        raise ValueError(f"crossfade needs two equal runs of >= 2 frames, got {tuple(old.shape)} "
                         f"and {tuple(new.shape)}")
    n = old.shape[0]
    w = torch.tensor([i / (n - 1) for i in range(n)], dtype=torch.float32, device=old.device).view(n, 1, 1)
    return old * (1 - w) + new * w
