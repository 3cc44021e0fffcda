"""Teacher simulator: turns ground-truth depth into what a video depth model outputs.

The refiner never sees a real depth network while training; it sees ground truth corrupted
the ways video depth models fail (all in log depth, all with per-clip random strengths, some
clips nearly clean so that the refiner learns to leave good input alone):

* a persistent error the refiner cannot know: global scale bias, a smooth bias field, blurred
  depth edges (what makes the teacher's AbsRel);
* per-frame scale (AR(1)) and shift jitter: frame-to-frame flicker;
* a smooth noise field that changes every frame (AR(1) in time);
* edge noise: per-frame noise in a band around depth discontinuities (shimmering edges);
* occasional local flicker: a blob that brightens or darkens for 1-3 frames;
* window joins: a windowed teacher (32-frame windows every 22 frames, like VDA) whose windows
  carry different scale offsets, cross-faded over 1-8 frames (1 = a hard jump);
* per-pixel noise.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def _smooth_field(rng: np.random.Generator, n: int, cells: int, height: int, width: int) -> torch.Tensor:
    """``n`` unit-variance smooth random fields ``[n, H, W]`` (bicubic from a coarse grid)."""
    gh, gw = cells, max(2, round(cells * width / height))
    grid = torch.from_numpy(rng.standard_normal((n, 1, gh + 2, gw + 2))).float()
    field = F.interpolate(grid, size=(height, width), mode="bicubic", align_corners=False)[:, 0]
    return field / field.std(dim=(1, 2), keepdim=True).clamp_min(1e-6)


def _ar1(rng: np.random.Generator, n: int, rho: float, shape: tuple[int, ...] = ()) -> np.ndarray:
    """Stationary unit-variance AR(1) sequence ``[n, *shape]``."""
    out = np.empty((n, *shape))
    out[0] = rng.standard_normal(shape)
    k = math.sqrt(max(0.0, 1 - rho * rho))
    for i in range(1, n):
        out[i] = rho * out[i - 1] + k * rng.standard_normal(shape)
    return out


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``[T, H, W]`` (replicate borders), by shifted sums."""
    if sigma < 0.3:
        return x
    r = max(1, int(3 * sigma))
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float64) / sigma) ** 2)
    k = (k / k.sum()).tolist()
    h, w = x.shape[1:]
    p = F.pad(x[:, None], (r, r, 0, 0), mode="replicate")[:, 0]
    y = sum(k[i] * p[:, :, i:i + w] for i in range(2 * r + 1))
    p = F.pad(y[:, None], (0, 0, r, r), mode="replicate")[:, 0]
    return sum(k[i] * p[:, i:i + h] for i in range(2 * r + 1))


def edge_band(log_depth: torch.Tensor, threshold: float = 0.08, width: int = 1) -> torch.Tensor:
    """Bool ``[T, H, W]``: pixels within `width` of a log-depth step above `threshold`."""
    gx = (log_depth[:, :, 1:] - log_depth[:, :, :-1]).abs()
    gy = (log_depth[:, 1:] - log_depth[:, :-1]).abs()
    e = torch.zeros_like(log_depth)
    e[:, :, 1:] = torch.maximum(e[:, :, 1:], gx)
    e[:, :, :-1] = torch.maximum(e[:, :, :-1], gx)
    e[:, 1:] = torch.maximum(e[:, 1:], gy)
    e[:, :-1] = torch.maximum(e[:, :-1], gy)
    band = (e > threshold).float()[:, None]
    return F.max_pool2d(band, 2 * width + 1, stride=1, padding=width)[:, 0] > 0


def simulate_teacher(depth: torch.Tensor, seed: int, *, strength: float = 1.0) -> torch.Tensor:
    """Corrupt ground truth like a video depth model would.

    Args:
        depth: Metric ground truth ``[T, H, W]`` (positive).
        seed: Seed of every random choice.
        strength: Multiplies every noise strength (1 = the training distribution).

    Returns:
        Teacher depth ``[T, H, W]`` float32, positive.
    """
    rng = np.random.default_rng(seed)
    t, h, w = depth.shape
    ell = torch.log(depth.float())
    u = lambda a, b: float(rng.uniform(a, b)) * strength  # noqa: E731
    clean = rng.random() < 0.1                 # some clips: a good teacher (flicker-free)
    flick = 0.0 if clean else 1.0

    # Persistent errors (not removable from depth alone).
    blur_sigma = float(rng.uniform(0.0, 1.2)) * h / 96
    out = _blur(ell, blur_sigma)
    out = out + float(rng.normal(0.0, 0.05)) * strength
    out = out + u(0.0, 0.04) * _smooth_field(rng, 1, int(rng.integers(2, 6)), h, w)

    # Per-frame scale jitter (AR(1)); a clip is either a per-frame-style or a windowed teacher.
    per_frame = rng.random() < 0.5
    s_sigma = u(0.005, 0.03) if per_frame else u(0.0, 0.01)
    scale = _ar1(rng, t, float(rng.uniform(0.0, 0.8))) * s_sigma * flick
    out = out + torch.from_numpy(scale).float()[:, None, None]

    # Smooth noise field changing every frame.
    v_sigma = u(0.0, 0.025) * flick
    if v_sigma > 0:
        coeff = torch.from_numpy(_ar1(rng, t, float(rng.uniform(0.0, 0.9)), (3,))).float()
        fields = _smooth_field(rng, 3, int(rng.integers(2, 7)), h, w)
        out = out + v_sigma * torch.einsum("tk,khw->thw", coeff, fields) / math.sqrt(3)

    # Window joins of a windowed teacher: per-window offsets, cross-faded.
    j_sigma = (u(0.0, 0.01) if per_frame else u(0.005, 0.035)) * flick
    if j_sigma > 0:
        stride, fade = 22, int(rng.integers(1, 9))
        phase = int(rng.integers(0, stride))
        offsets = rng.normal(0.0, j_sigma, size=t // stride + 3)
        idx = (np.arange(t) + phase) / stride
        k = np.floor(idx).astype(int)
        frac = np.clip((idx - k) * stride - (stride - fade), 0, fade) / fade
        off = offsets[k] * (1 - frac) + offsets[k + 1] * frac
        out = out + torch.from_numpy(off).float()[:, None, None]

    # Edge shimmer: per-frame noise in a band around depth edges.
    e_sigma = u(0.0, 0.08) * flick
    if e_sigma > 0:
        band = edge_band(ell, width=int(rng.integers(1, 3))).float()
        noise = torch.from_numpy(rng.standard_normal((t, h, w))).float()
        out = out + e_sigma * band * _blur(noise, 0.7) * 1.5

    # Occasional local flicker blobs lasting 1-3 frames.
    p_blob = float(rng.uniform(0.0, 0.15)) * flick
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    for i in range(t):
        if rng.random() < p_blob:
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            r = rng.uniform(0.05, 0.25) * w
            amp = float(rng.normal(0.0, 0.06)) * strength
            blob = amp * torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
            out[i:i + int(rng.integers(1, 4))] += blob

    # Per-pixel noise, then per-frame shift jitter in depth units.
    out = out + u(0.0, 0.01) * flick * torch.from_numpy(rng.standard_normal((t, h, w))).float()
    teacher = torch.exp(out)
    b_sigma = u(0.0, 0.01) * flick
    if b_sigma > 0:
        shift = torch.from_numpy(rng.normal(0.0, b_sigma, size=t)).float()
        teacher = teacher + shift[:, None, None] * teacher.median()
    return teacher.clamp_min(0.05 * float(depth.min()))
