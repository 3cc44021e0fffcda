"""Full-resolution selective temporal smoother (the refiner's high-res refinement).

The low-res path cannot see single-pixel flicker (shimmering depth edges, pixel noise), so
its decoder also predicts, per frame and location, how much memory a per-pixel scan may keep
(``kappa`` in (0, 1)). At full resolution, each pixel's log depth is then scanned forwards
and backwards in time::

    a_t = kappa_t * exp(-(l_t - m_(t-1))^2 / (2 sigma^2))
    m_t = a_t * m_(t-1) + (1 - a_t) * l_t

The gate is selective twice over: the network decides where smoothing is safe, and a pixel
whose value leaves its running estimate by more than about ``sigma`` (an edge moving through
it, a real depth change) resets its memory on its own, so moving edges are not smeared.
The mean of both directions minus ``l_t`` is added to the residual. One scalar per frame and
pixel per step: cost is linear in the window length and negligible beside the CNN.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def robust_scan(ell: torch.Tensor, kappa: torch.Tensor, sigma: torch.Tensor, *,
                reverse: bool = False) -> torch.Tensor:
    """One direction of the gated per-pixel scan.

    Args:
        ell: Log depth ``[B, T, H, W]``.
        kappa: Memory gates in (0, 1) ``[B, T, H, W]``.
        sigma: Positive scalar tensor (log-depth change that starts a reset).
        reverse: Scan from the last frame to the first.

    Returns:
        Running estimates ``[B, T, H, W]``.
    """
    t_len = ell.shape[1]
    steps = list(range(t_len - 1, -1, -1)) if reverse else list(range(t_len))
    out: list[torch.Tensor] = [ell[:, 0]] * t_len
    m = ell[:, steps[0]]
    out[steps[0]] = m
    inv = 0.5 / (sigma * sigma)
    for t in steps[1:]:
        x = ell[:, t]
        a = kappa[:, t] * torch.exp(-(x - m) ** 2 * inv)
        m = a * m + (1 - a) * x
        out[t] = m
    return torch.stack(out, dim=1)


class TemporalSmoother(nn.Module):
    """Bidirectional `robust_scan` with a learnt reset scale.

    Args:
        sigma: Initial reset scale (log depth).
    """

    def __init__(self, sigma: float = 0.05) -> None:
        super().__init__()
        self.sigma_raw = nn.Parameter(torch.tensor(math.log(math.expm1(sigma))))

    def forward(self, ell: torch.Tensor, kappa: torch.Tensor) -> torch.Tensor:
        """Smoothed minus input, ``[B, T, H, W]`` (a log-depth residual)."""
        sigma = F.softplus(self.sigma_raw) + 1e-3
        fwd = robust_scan(ell, kappa, sigma)
        bwd = robust_scan(ell, kappa, sigma, reverse=True)
        return 0.5 * (fwd + bwd) - ell
