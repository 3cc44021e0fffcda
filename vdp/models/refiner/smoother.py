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

Motion gating (RGB refiners): each step's memory is further multiplied by
``exp(-(c / tau)^2)``, ``c`` the pixel's colour change across that step
(`vdp.models.refiner.colour.colour_change`) and ``tau`` learnt, so a pixel that now sees a
different surface (a moving object's edge, an occlusion, texture sliding past under camera
motion) starts over instead of being averaged with what was there before.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vdp.models.refiner.ssm import scans_in_place


def robust_scan(ell: torch.Tensor, kappa: torch.Tensor, sigma: torch.Tensor, *,
                reverse: bool = False, keep: torch.Tensor | None = None) -> torch.Tensor:
    """One direction of the gated per-pixel scan.

    Args:
        ell: Log depth ``[B, T, H, W]``.
        kappa: Memory gates in (0, 1) ``[B, T, H, W]``.
        sigma: Positive scalar tensor (log-depth change that starts a reset).
        reverse: Scan from the last frame to the first.
        keep: Extra memory factor in [0, 1] ``[B, T, H, W]`` of the step from frame t-1 to
            frame t (the reversed scan uses ``keep[t+1]`` for its step from t+1 to t); None: 1.

    Returns:
        Running estimates ``[B, T, H, W]``.
    """
    t_len = ell.shape[1]
    steps = list(range(t_len - 1, -1, -1)) if reverse else list(range(t_len))
    inv = 0.5 / (sigma * sigma)
    if scans_in_place(ell, kappa, sigma, keep):
        return _scan_in_place(ell, kappa, inv, steps, reverse, keep)
    return _scan_autograd(ell, kappa, inv, steps, reverse, keep)


def _scan_autograd(ell: torch.Tensor, kappa: torch.Tensor, inv: torch.Tensor, steps: list[int],
                   reverse: bool, keep: torch.Tensor | None) -> torch.Tensor:
    """`robust_scan` with fresh tensors each step (what autograd needs to keep)."""
    out: list[torch.Tensor] = [ell[:, 0]] * ell.shape[1]
    m = ell[:, steps[0]]
    out[steps[0]] = m
    for t in steps[1:]:
        x = ell[:, t]
        a = kappa[:, t] * torch.exp(-(x - m) ** 2 * inv)
        if keep is not None:
            a = a * keep[:, t + 1 if reverse else t]
        m = a * m + (1 - a) * x
        out[t] = m
    return torch.stack(out, dim=1)


def _scan_in_place(ell: torch.Tensor, kappa: torch.Tensor, inv: torch.Tensor, steps: list[int],
                   reverse: bool, keep: torch.Tensor | None) -> torch.Tensor:
    """`_scan_autograd`'s operations in the same order, into two buffers reused every step and
    straight into the output (no per-step allocations of a frame-sized tensor; bit for bit the
    same result, tested)."""
    out = torch.empty_like(ell)
    m = out[:, steps[0]]
    m.copy_(ell[:, steps[0]])
    a, rest = torch.empty_like(m), torch.empty_like(m)
    for t in steps[1:]:
        x = ell[:, t]
        torch.sub(x, m, out=a).pow_(2).neg_().mul_(inv).exp_()
        torch.mul(kappa[:, t], a, out=a)
        if keep is not None:
            a.mul_(keep[:, t + 1 if reverse else t])
        torch.neg(a, out=rest).add_(1).mul_(x)                   # (1 - a) * x
        m = torch.mul(a, m, out=out[:, t]).add_(rest)
    return out


def _softplus_inverse(x: float) -> float:
    return math.log(math.expm1(x))


class TemporalSmoother(nn.Module):
    """Bidirectional `robust_scan` with a learnt reset scale (and colour-change scale).

    Args:
        sigma: Initial reset scale (log depth).
        motion_gate: Also reset on colour change (see module docstring).
        tau: Initial colour-change scale (unit RGB) of the motion gate.
    """

    def __init__(self, sigma: float = 0.05, *, motion_gate: bool = False, tau: float = 0.08) -> None:
        super().__init__()
        self.sigma_raw = nn.Parameter(torch.tensor(_softplus_inverse(sigma)))
        self.motion_gate = motion_gate
        if motion_gate:
            self.tau_raw = nn.Parameter(torch.tensor(_softplus_inverse(tau)))

    def forward(self, ell: torch.Tensor, kappa: torch.Tensor,
                change: torch.Tensor | None = None) -> torch.Tensor:
        """Smoothed minus input, ``[B, T, H, W]`` (a log-depth residual).

        Args:
            ell: Log depth ``[B, T, H, W]``.
            kappa: Memory gates ``[B, T, H, W]``.
            change: Per-pixel colour change from the previous frame ``[B, T, H, W]``; needed
                (and only used) with ``motion_gate``.
        """
        sigma = F.softplus(self.sigma_raw) + 1e-3
        keep = None
        if self.motion_gate:
            if change is None:
                raise ValueError("a motion-gated smoother needs the colour change")
            tau = F.softplus(self.tau_raw) + 1e-3
            keep = torch.exp(-(change / tau) ** 2)         # step t-1 -> t crosses change[t]
        fwd = robust_scan(ell, kappa, sigma, keep=keep)
        bwd = robust_scan(ell, kappa, sigma, reverse=True, keep=keep)
        return 0.5 * (fwd + bwd) - ell
