"""Depth colour maps as 256-entry lookup tables, and a stable value range (no per-frame
normalisation, no second pass).

Colourising a frame is one quantisation of the depth to 8-bit table indices and one table
lookup per channel, never float interpolation per pixel.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import torch

from vdp.outputs._pixels import as_numpy
from vdp.outputs.pixel_kernels import colour_planes, colour_yuv420

#: Package data file with the exact 256-entry tables (origin and licence of each inside).
TABLES_FILE = "colormaps.json"
#: Maps read from `TABLES_FILE`: turbo (Google, Apache-2.0) and inferno (van der Walt & Smith,
#: CC0), both exactly as matplotlib ships them.
TABLE_MAPS = ("turbo", "inferno")
# Maps with a closed form: control points (position, R, G, B in 0..1), interpolated linearly.
_POINTS: dict[str, list[tuple[float, float, float, float]]] = {
    "gray": [(0.0, 0.0, 0.0, 0.0), (1.0, 1.0, 1.0, 1.0)],
}
COLORMAPS = ("turbo", "inferno", "gray")


@cache
def _stored_table(name: str) -> torch.Tensor:
    """The exact uint8 ``[256,3]`` table `name` from the package data file."""
    data = json.loads(resources.files("vdp.outputs").joinpath(TABLES_FILE).read_text("utf-8"))
    raw = bytes.fromhex(data["maps"][name]["rgb"])
    if len(raw) != 256 * 3:
        raise ValueError(f"{TABLES_FILE}: table {name!r} has {len(raw)} bytes, expected 768")
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(256, 3)


def _check(name: str) -> None:
    if name not in COLORMAPS:
        raise ValueError(f"unknown colormap {name!r}; allowed: {list(COLORMAPS)}")


def colormap_float(name: str, x: torch.Tensor) -> torch.Tensor:
    """The colour map evaluated at positions `x` in [0,1]: float64 RGB ``[..., 3]`` in [0,1].

    Table maps interpolate linearly between their 256 entries, so ``x = k / 255`` gives entry
    ``k`` exactly.
    """
    _check(name)
    x = x.to(torch.float64).clamp(0, 1)
    if name in TABLE_MAPS:
        table = _stored_table(name).to(torch.float64) / 255
        pos = x * 255
        lo = pos.floor().long().clamp(0, 254)
        w = (pos - lo).unsqueeze(-1)
        return table[lo] * (1 - w) + table[lo + 1] * w
    pts = torch.tensor(_POINTS[name], dtype=torch.float64)
    hi = torch.searchsorted(pts[:, 0].contiguous(), x.contiguous()).clamp(1, len(pts) - 1)
    lo = hi - 1
    w = ((x - pts[lo, 0]) / (pts[hi, 0] - pts[lo, 0])).unsqueeze(-1)
    return pts[lo, 1:] * (1 - w) + pts[hi, 1:] * w


def colormap_table(name: str) -> torch.Tensor:
    """A uint8 ``[256,3]`` lookup table for `name` (``turbo``, ``inferno`` or ``gray``).

    turbo and inferno are the published tables exactly; gray is ``round(255 * k / 255)``.
    """
    _check(name)
    if name in TABLE_MAPS:
        return _stored_table(name).clone()
    x = torch.linspace(0, 1, 256, dtype=torch.float64)
    return (colormap_float(name, x) * 255).round().to(torch.uint8)


def yuv_table(rgb_table: torch.Tensor) -> torch.Tensor:
    """The uint8 ``[256,3]`` RGB table as BT.709 limited-range Y, Cb, Cr (the colours an MP4 of
    the RGB table shows, without converting every pixel)."""
    rgb = rgb_table.to(torch.float64) / 255
    kr, kb = 0.2126, 0.0722
    y = kr * rgb[:, 0] + (1 - kr - kb) * rgb[:, 1] + kb * rgb[:, 2]
    cb, cr = (rgb[:, 2] - y) / (2 * (1 - kb)), (rgb[:, 0] - y) / (2 * (1 - kr))
    return torch.stack([16 + 219 * y, 128 + 224 * cb, 128 + 224 * cr], 1).round().clamp(0, 255).to(torch.uint8)


SAMPLES = 1 << 18  # values the range percentiles are taken from


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
        v = values.flatten()
        v = v[:: v.numel() // SAMPLES + 1].float()  # percentiles of a strided sample are plenty
        v = v[torch.isfinite(v)]
        if v.numel() == 0:
            lo, hi = 0.0, 1.0
        else:
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

    def affine(self) -> tuple[np.float32, np.float32]:
        """float32 ``(k, b)`` with ``values * k + b`` in [0.5, 255.5] over the fixed range: truncating
        gives ``round(normalise(values) * 255)`` (for `vdp.outputs.pixel_kernels`)."""
        k = 255 / (self.high - self.low)
        return np.float32(k), np.float32(0.5 - self.low * k)


class Colouriser:
    """Colourises frames ``[T,H,W]`` through a `StableRange` and a colour table, one pass per
    frame (`vdp.outputs.pixel_kernels`).

    Args:
        name: Colour map (``turbo``, ``inferno`` or ``gray``).
        value_range: Fixes and applies the value range (its `clipped` counts clipped values).
    """

    def __init__(self, name: str, value_range: StableRange) -> None:
        self.range = value_range
        table = colormap_table(name)
        self.rgb_tables = np.ascontiguousarray(table.numpy().T)  # [3,256]: one table per plane
        self.yuv_tables = np.ascontiguousarray(yuv_table(table).numpy().T)

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        """RGB uint8 ``[T,3,H,W]`` (contiguous) of `values` float ``[T,H,W]``."""
        src, k, b = self._mapped_source(values)
        t, h, w = src.shape
        out = np.empty((t, 3, h, w), np.uint8)
        for i in range(t):
            self.range.clipped += colour_planes(np.ascontiguousarray(src[i]), k, b, self.rgb_tables, out[i])
        return torch.from_numpy(out)

    def yuv420(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The colourised frames as BT.709 limited-range 4:2:0 planes: Y uint8 ``[T,H,W]`` and
        Cb, Cr ``[T,H/2,W/2]`` (H, W even), ready for `Mp4Writer.write_yuv420`.

        Half the table lookups of `__call__` and no RGB-to-YUV conversion: chroma is looked up
        at the top-left pixel of each 2x2 block (the same colours as an encoded RGB frame, up to
        the chroma filter at colour edges).
        """
        t, h, w = values.shape
        if h % 2 or w % 2:
            raise ValueError(f"4:2:0 planes need an even size, got {h}x{w}")
        src, k, b = self._mapped_source(values)
        y = np.empty((t, h, w), np.uint8)
        u = np.empty((t, h // 2, w // 2), np.uint8)
        v = np.empty((t, h // 2, w // 2), np.uint8)
        for i in range(t):
            self.range.clipped += colour_yuv420(np.ascontiguousarray(src[i]), k, b, self.yuv_tables,
                                                y[i], u[i], v[i])
        return torch.from_numpy(y), torch.from_numpy(u), torch.from_numpy(v)

    def _mapped_source(self, values: torch.Tensor) -> tuple[np.ndarray, np.float32, np.float32]:
        """`values` as float32 numpy frames and the range's affine map (the range fixed first)."""
        if self.range.low is None:
            self.range.fit(values)
        return (as_numpy(values.float()), *self.range.affine())
