"""Disparity from depth, and a streaming disparity range that does not pump.

Normalising each frame by its own min/max makes the whole scene breathe: a hand entering the
frame pushes everything else back. `StreamingRange` instead tracks the range of the stream:

1. **Robust per-frame statistics**: the `low_pct`/`high_pct` percentiles of the frame's
   disparity (on a strided subsample), so a few outlier pixels move nothing.
2. **Bounded lookahead envelope**: the range for frame ``t`` must cover the statistics of
   frames ``t .. t+L`` (``L = lookahead_frames``): lowest low, highest high. The range starts
   to open L frames *before* a near object arrives, so it is not clipped when it does.
3. **Asymmetric smoothing** of the envelope: opening (attack) reaches 95 % of a step within
   L frames; closing (release) follows with a time constant of `release_frames` frames, so
   the range does not snap back after a brief event and jitter in the statistics is damped.

Memory and latency are bounded by L frames; no pass over the whole video. A scene cut resets
the range (the engine re-creates the stage state at a segment start).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

import torch

DepthKind = Literal["relative", "metric"]
DEPTH_KINDS: tuple[str, ...] = ("relative", "metric")
MIN_METRIC_DEPTH_M = 1e-3


def depth_to_disparity(depth: torch.Tensor, kind: str) -> torch.Tensor:
    """Disparity up to scale (larger = nearer) from a depth layer.

    Args:
        depth: ``[T,H,W]`` float. ``relative``: affine-invariant inverse depth (what relative
            Video Depth Anything models give), already a disparity. ``metric``: depth in
            metres, converted to ``1/z`` (depths below 1 mm are clamped).
        kind: ``"relative"`` or ``"metric"``.

    Returns:
        ``[T,H,W]`` float32 disparity; non-finite values replaced by the frame's lowest.
    """
    if kind not in DEPTH_KINDS:
        raise ValueError(f"depth kind must be one of {DEPTH_KINDS}, got {kind!r}")
    d = depth.float()
    if kind == "metric":
        d = 1.0 / d.clamp(min=MIN_METRIC_DEPTH_M)
    finite = torch.isfinite(d)
    if not bool(finite.all()):
        fallback = torch.where(finite, d, torch.full_like(d, math.inf)).flatten(1).amin(1)
        fallback = torch.where(torch.isfinite(fallback), fallback, torch.zeros_like(fallback))
        d = torch.where(finite, d, fallback.view(-1, 1, 1))
    return d


def frame_percentiles(disparity: torch.Tensor, low_pct: float, high_pct: float,
                      max_samples: int = 65_536) -> torch.Tensor:
    """Per-frame robust low/high of `disparity` ``[T,H,W]`` → ``[T,2]`` float64 (on the CPU).

    A regular grid of at most `max_samples` pixels per frame is used; percentiles of that many
    samples are within a fraction of a percent of the full frame's.
    """
    t, h, w = disparity.shape
    step = max(1, math.ceil(math.sqrt(h * w / max_samples)))
    sample = disparity[:, step // 2::step, step // 2::step].reshape(t, -1).float()
    q = torch.tensor([low_pct / 100, high_pct / 100], device=sample.device)
    return torch.quantile(sample, q, dim=1).T.double().cpu()


def minmax_ranges(disparity: torch.Tensor) -> torch.Tensor:
    """Per-frame min/max ``[T,2]`` (the pumping baseline `StreamingRange` replaces)."""
    flat = disparity.flatten(1).float()
    return torch.stack([flat.amin(1), flat.amax(1)], 1).double().cpu()


@dataclass
class StreamingRange:
    """Per-frame disparity ranges from a stream of per-frame statistics, with bounded lookahead.

    Push each frame's ``(low, high)`` statistics in order; `push` returns the ranges of the
    frames that are now final (their lookahead is known), `finish` those of the rest.

    Args:
        lookahead_frames: L, how many later frames each range may see.
        release_frames: Time constant (frames) with which the range narrows again.
    """

    lookahead_frames: int = 8
    release_frames: float = 30.0
    _stats: list[tuple[float, float]] = field(default_factory=list)  # not yet emitted
    _smooth: tuple[float, float] | None = None
    emitted: int = 0

    def __post_init__(self) -> None:
        if self.lookahead_frames < 0:
            raise ValueError(f"lookahead_frames must be >= 0, got {self.lookahead_frames}")
        if not self.release_frames > 0:
            raise ValueError(f"release_frames must be > 0, got {self.release_frames}")

    @property
    def attack(self) -> float:
        """Smoothing factor while the range opens: 95 % of a step within L frames."""
        return 1.0 if self.lookahead_frames == 0 else 1.0 - 0.05 ** (1.0 / self.lookahead_frames)

    @property
    def release(self) -> float:
        """Smoothing factor while the range narrows."""
        return 1.0 - math.exp(-1.0 / self.release_frames)

    @property
    def pending(self) -> int:
        """Frames pushed whose range has not been returned yet."""
        return len(self._stats)

    def copy(self) -> "StreamingRange":
        """An independent copy (the statistics list is not shared)."""
        return replace(self, _stats=list(self._stats))

    def push(self, stats: torch.Tensor) -> torch.Tensor:
        """Add frames' ``[T,2]`` (low, high); return ``[K,2]`` ranges of the frames now final."""
        if stats.ndim != 2 or stats.shape[1] != 2:
            raise ValueError(f"stats must be [T,2] (low, high), got {tuple(stats.shape)}")
        self._stats.extend((float(lo), float(hi)) for lo, hi in stats.tolist())
        return self._emit(max(0, len(self._stats) - self.lookahead_frames))

    def finish(self) -> torch.Tensor:
        """Ranges ``[K,2]`` of every frame still pending (their lookahead ends with the stream)."""
        return self._emit(len(self._stats))

    def _emit(self, count: int) -> torch.Tensor:
        out = []
        lookahead = self.lookahead_frames
        for i in range(count):
            window = self._stats[i:i + lookahead + 1]
            env_lo = min(s[0] for s in window)
            env_hi = max(s[1] for s in window)
            if self._smooth is None:
                lo, hi = env_lo, env_hi
            else:
                lo, hi = self._smooth
                lo += (self.attack if env_lo < lo else self.release) * (env_lo - lo)
                hi += (self.attack if env_hi > hi else self.release) * (env_hi - hi)
            self._smooth = (lo, hi)
            out.append((lo, hi))
        del self._stats[:count]
        self.emitted += count
        return torch.tensor(out, dtype=torch.float64).reshape(-1, 2)


def normalise(disparity: torch.Tensor, ranges: torch.Tensor) -> torch.Tensor:
    """Map disparity ``[T,H,W]`` to nearness in [0,1] with per-frame ``[T,2]`` (low, high).

    Values outside the range are clipped. A frame whose range is (nearly) empty (a flat depth
    map) maps to 0.5 everywhere: the whole frame at mid depth, nothing torn apart.
    """
    r = ranges.to(disparity.device, torch.float32)
    lo = r[:, 0].view(-1, 1, 1)
    span = (r[:, 1] - r[:, 0]).view(-1, 1, 1)
    tiny = span <= 1e-6 * torch.maximum(r.abs().amax(1).view(-1, 1, 1), torch.ones_like(span))
    n = (disparity.float() - lo) / torch.where(tiny, torch.ones_like(span), span)
    return torch.where(tiny, torch.full_like(n, 0.5), n.clamp(0, 1))
