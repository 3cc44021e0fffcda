"""Simple temporal filters the refiner is compared with (both on log depth, per pixel).

* EMA: causal exponential moving average ``e_t = a * e_(t-1) + (1 - a) * log d_t``.
* Temporal bilateral: centred window of radius r; weights
  ``exp(-(dt)^2 / 2 sigma_t^2) * exp(-(log d_s - log d_t)^2 / 2 sigma_r^2)`` (infinite sigma =
  that factor off), frames outside the sequence left out.
* Robust scan: the refiner's own per-pixel smoother rule (`robust_scan`, forwards and backwards,
  averaged) with one fixed memory and reset scale over the whole sequence, no network: what the
  refiner's learnt parts have to beat.
"""
from __future__ import annotations

import math

import torch

from vdp.models.refiner.smoother import robust_scan

#: Parameter grids searched on the validation split.
EMA_DECAYS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
BILATERAL_GRID = tuple((r, st, sr) for r in (1, 2, 3, 4, 6, 8, 12, 16)
                       for st in (1.0, 2.0, 4.0, 8.0, math.inf)
                       for sr in (0.01, 0.02, 0.04, 0.08, math.inf))
ROBUST_SCAN_GRID = tuple((m, s) for m in (0.5, 0.7, 0.8, 0.9, 0.95)
                         for s in (0.05, 0.1, 0.2, 0.5, math.inf))


def ema(depth: torch.Tensor, decay: float) -> torch.Tensor:
    """Per-pixel causal EMA of log depth ``[T, H, W]`` -> ``[T, H, W]``."""
    ell = torch.log(depth.clamp_min(1e-6))
    out = torch.empty_like(ell)
    e = ell[0]
    for t in range(ell.shape[0]):
        e = ell[t] if t == 0 else decay * e + (1 - decay) * ell[t]
        out[t] = e
    return torch.exp(out)


def temporal_bilateral(depth: torch.Tensor, radius: int, sigma_t: float, sigma_r: float) -> torch.Tensor:
    """Per-pixel centred temporal bilateral filter of log depth ``[T, H, W]`` -> ``[T, H, W]``."""
    ell = torch.log(depth.clamp_min(1e-6))
    t_len = ell.shape[0]
    num = torch.zeros_like(ell)
    den = torch.zeros_like(ell)
    for off in range(-radius, radius + 1):
        lo, hi = max(0, -off), min(t_len, t_len - off)
        if lo >= hi:
            continue
        other = ell[lo + off:hi + off]
        wt = math.exp(-off * off / (2 * sigma_t ** 2)) if math.isfinite(sigma_t) else 1.0
        w = torch.full_like(other, wt)
        if math.isfinite(sigma_r):
            w = w * torch.exp(-((other - ell[lo:hi]) ** 2) / (2 * sigma_r ** 2))
        num[lo:hi] += w * other
        den[lo:hi] += w
    return torch.exp(num / den)


def robust_scan_filter(depth: torch.Tensor, memory: float, sigma: float) -> torch.Tensor:
    """Per-pixel two-sided robust scan of log depth ``[T, H, W]`` -> ``[T, H, W]``.

    Each direction keeps ``a = memory * exp(-(l_t - m)^2 / 2 sigma^2)`` of its running estimate
    ``m`` (a change of about `sigma` resets it; infinite sigma: a plain exponential average);
    the output is the mean of both directions.
    """
    ell = torch.log(depth.clamp_min(1e-6))[None]
    kappa = torch.full_like(ell, memory)
    s = torch.tensor(sigma, dtype=ell.dtype)
    both = robust_scan(ell, kappa, s) + robust_scan(ell, kappa, s, reverse=True)
    return torch.exp(0.5 * both[0])
