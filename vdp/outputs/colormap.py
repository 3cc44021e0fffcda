"""Depth colour maps and a stable value range (no per-frame normalisation, no second pass)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

# Control points (position, R, G, B in 0..1), interpolated linearly into a 256-entry table.
_POINTS: dict[str, list[tuple[float, float, float, float]]] = {
    "turbo": [(0.0, 0.19, 0.07, 0.23), (0.1, 0.27, 0.35, 0.82), (0.2, 0.22, 0.62, 0.99),
              (0.3, 0.10, 0.84, 0.87), (0.4, 0.18, 0.96, 0.60), (0.5, 0.53, 1.00, 0.30),
              (0.6, 0.82, 0.91, 0.21), (0.7, 0.99, 0.72, 0.21), (0.8, 0.98, 0.45, 0.10),
              (0.9, 0.84, 0.21, 0.02), (1.0, 0.48, 0.02, 0.01)],
    "inferno": [(0.0, 0.0, 0.0, 0.02), (0.25, 0.34, 0.06, 0.43), (0.5, 0.73, 0.21, 0.33),
                (0.75, 0.98, 0.55, 0.04), (1.0, 0.99, 1.0, 0.64)],
    "gray": [(0.0, 0.0, 0.0, 0.0), (1.0, 1.0, 1.0, 1.0)],
}


def colormap_table(name: str) -> torch.Tensor:
    """A uint8 ``[256,3]`` lookup table for `name` (``turbo``, ``inferno`` or ``gray``)."""
    if name not in _POINTS:
        raise ValueError(f"unknown colormap {name!r}; allowed: {sorted(_POINTS)}")
    pts = torch.tensor(_POINTS[name], dtype=torch.float64)
    x = torch.linspace(0, 1, 256, dtype=torch.float64)
    hi = torch.searchsorted(pts[:, 0].contiguous(), x).clamp(1, len(pts) - 1)
    lo = hi - 1
    w = ((x - pts[lo, 0]) / (pts[hi, 0] - pts[lo, 0])).unsqueeze(1)
    rgb = pts[lo, 1:] * (1 - w) + pts[hi, 1:] * w
    return (rgb * 255).round().to(torch.uint8)


def apply_colormap(values01: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Map values in [0,1] ``[T,H,W]`` to RGB uint8 ``[T,3,H,W]``."""
    idx = (values01.clamp(0, 1) * 255).round().long()
    return table[idx].permute(0, 3, 1, 2).contiguous()


@dataclass
class StableRange:
    """A value range fixed from the first frames written, so colours do not pump.

    The range is the `low_pct`..`high_pct` percentiles of the first batch, widened by
    `margin` of its span on each side; later values outside it are clipped (and counted).
    """

    low_pct: float = 1.0
    high_pct: float = 99.0
    margin: float = 0.1
    low: float | None = None
    high: float | None = None
    clipped: int = 0

    def fit(self, values: torch.Tensor) -> None:
        """Fix the range from `values` if it is not fixed yet."""
        if self.low is not None:
            return
        v = values.flatten().float()
        v = v[torch.isfinite(v)]
        if v.numel() == 0:
            lo, hi = 0.0, 1.0
        else:
            if v.numel() > 2_000_000:  # percentiles of a strided sample are plenty
                v = v[:: v.numel() // 2_000_000 + 1]
            lo = float(torch.quantile(v, self.low_pct / 100))
            hi = float(torch.quantile(v, self.high_pct / 100))
        span = max(hi - lo, 1e-6)
        self.low, self.high = lo - self.margin * span, hi + self.margin * span

    def normalise(self, values: torch.Tensor) -> torch.Tensor:
        """Values mapped to [0,1] with the fixed range (fitting it first if needed)."""
        self.fit(values)
        out = (values.float() - self.low) / (self.high - self.low)
        self.clipped += int(((out < 0) | (out > 1)).sum())
        return out.clamp(0, 1)
