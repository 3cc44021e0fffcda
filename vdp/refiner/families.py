"""Teacher families: one named failure mode of a video depth model each, for training and held-out evaluation.

`simulate_teacher` (family ``classic``) mixes every error at random strengths; it is what
``refiner_v0`` was trained on and stays bit-identical so that checkpoint reproduces. The other
families put one failure mode in front (all in log depth, on top of a mild persistent error:
blur, global bias and a static smooth bias field, which no temporal method can remove):

* ``vda_windows``: a windowed teacher like Video Depth Anything's offline mode (32-frame
  windows, 10 frames overlap, stride 22): each window has its own scale and low-frequency bias
  field, aligned only roughly, linearly cross-faded over the overlap (or a hard step).
* ``ar1_scale``: per-frame global scale jitter, AR(1) with strong correlation (slow wobble).
* ``shimmer``: strong per-frame noise in a band around depth edges plus pixel noise.
* ``drift``: a low-frequency bias field that slides across the image over time, and a global
  scale random walk (slow drift, no jumps).
* ``moving_objects``: moving objects get their own flickering scale error and a halo of noise
  around them, the background stays clean (needs the clip's dynamic mask).
* ``camera_motion``: scale error that grows with camera speed (fast pans/turns wobble, a still
  camera is stable; needs the clip's poses).

Which families train and which are held out is fixed in `vdp.refiner.splits`.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from vdp.refiner.teacher import _ar1, _blur, _smooth_field, edge_band, simulate_teacher

FAMILIES: tuple[str, ...] = ("classic", "vda_windows", "ar1_scale", "shimmer", "drift",
                             "moving_objects", "camera_motion")
#: VDA offline windows: length and overlap (stride = 32 - 10 = 22 frames).
VDA_WINDOW, VDA_OVERLAP = 32, 10


class UnknownFamilyError(ValueError):
    """A teacher family name that `FAMILIES` does not list, or a family missing its inputs."""


def _persistent(rng: np.random.Generator, ell: torch.Tensor) -> torch.Tensor:
    """Mild errors fixed over the clip: edge blur, global bias, static smooth field."""
    t, h, w = ell.shape
    out = _blur(ell, float(rng.uniform(0.0, 1.0)) * h / 96)
    out = out + float(rng.normal(0.0, 0.04))
    return out + float(rng.uniform(0.0, 0.03)) * _smooth_field(rng, 1, int(rng.integers(2, 6)), h, w)


def _vda_windows(rng, ell, out, **_):
    t, h, w = ell.shape
    stride = VDA_WINDOW - VDA_OVERLAP
    n_win = max(1, math.ceil(max(t - VDA_OVERLAP, 1) / stride)) + 1
    scale = rng.normal(0.0, rng.uniform(0.01, 0.05), n_win)
    fields = float(rng.uniform(0.0, 0.025)) * _smooth_field(rng, n_win, int(rng.integers(2, 5)), h, w)
    fade = 1 if rng.random() < 0.3 else VDA_OVERLAP
    per_frame = torch.empty(t, h, w)
    for i in range(t):
        k = min(i // stride, n_win - 2)
        into = i - k * stride - (VDA_WINDOW - fade)         # frames into the next window's fade
        lam = 0.0 if into < 0 else min(1.0, (into + 1) / fade)
        per_frame[i] = ((1 - lam) * (scale[k] + fields[k]) + lam * (scale[k + 1] + fields[k + 1]))
    return out + per_frame


def _ar1_scale(rng, ell, out, **_):
    t = ell.shape[0]
    s = _ar1(rng, t, float(rng.uniform(0.5, 0.97))) * float(rng.uniform(0.01, 0.04))
    return out + torch.from_numpy(s).float()[:, None, None]


def _shimmer(rng, ell, out, **_):
    t, h, w = ell.shape
    band = edge_band(ell, width=int(rng.integers(1, 4))).float()
    noise = _blur(torch.from_numpy(rng.standard_normal((t, h, w))).float(), 0.7) * 1.5
    pixel = torch.from_numpy(rng.standard_normal((t, h, w))).float()
    return out + float(rng.uniform(0.05, 0.15)) * band * noise + float(rng.uniform(0.0, 0.01)) * pixel


def _drift(rng, ell, out, **_):
    t, h, w = ell.shape
    speed = float(rng.uniform(0.2, 1.0))                     # pixels per frame
    angle = float(rng.uniform(0, 2 * math.pi))
    pad = int(math.ceil(speed * t)) + 2
    big = _smooth_field(rng, 1, int(rng.integers(2, 5)), h + 2 * pad, w + 2 * pad)[None]
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    frames = []
    for i in range(t):
        dy, dx = speed * i * math.sin(angle), speed * i * math.cos(angle)
        gx = 2 * (xx + pad + dx) / (w + 2 * pad - 1) - 1
        gy = 2 * (yy + pad + dy) / (h + 2 * pad - 1) - 1
        frames.append(F.grid_sample(big, torch.stack([gx, gy], -1)[None], mode="bilinear",
                                    align_corners=True)[0, 0])
    walk = np.cumsum(rng.normal(0.0, rng.uniform(0.002, 0.006), t))
    return (out + float(rng.uniform(0.02, 0.06)) * torch.stack(frames)
            + torch.from_numpy(walk - walk.mean()).float()[:, None, None])


def _moving_objects(rng, ell, out, dynamic=None, **_):
    if dynamic is None:
        raise UnknownFamilyError("teacher family 'moving_objects' needs the clip's dynamic mask")
    t = ell.shape[0]
    dyn = dynamic.float()
    halo = F.max_pool2d(dyn[:, None], 5, stride=1, padding=2)[:, 0] - dyn
    s = _ar1(rng, t, float(rng.uniform(0.0, 0.7))) * float(rng.uniform(0.03, 0.08))
    bias = float(rng.normal(0.0, 0.05))
    noise = torch.from_numpy(rng.standard_normal(ell.shape)).float()
    return (out + dyn * (bias + torch.from_numpy(s).float()[:, None, None])
            + float(rng.uniform(0.02, 0.08)) * halo * noise)


def _camera_motion(rng, ell, out, poses=None, **_):
    if poses is None:
        raise UnknownFamilyError("teacher family 'camera_motion' needs the clip's camera poses")
    p = poses.double()
    rel = torch.linalg.inv(p[:-1]) @ p[1:]
    trans = rel[:, :3, 3].norm(dim=1)
    angle = torch.arccos(((rel[:, 0, 0] + rel[:, 1, 1] + rel[:, 2, 2] - 1) / 2).clamp(-1, 1))
    speed = torch.cat([trans[:1], trans]) + 2.0 * torch.cat([angle[:1], angle])   # m + rad/frame
    speed = (speed / speed.mean().clamp_min(1e-9)).float().numpy()
    s = _ar1(rng, ell.shape[0], float(rng.uniform(0.0, 0.6))) * speed * float(rng.uniform(0.01, 0.04))
    return out + torch.from_numpy(s).float()[:, None, None]


_APPLY: dict[str, Callable[..., torch.Tensor]] = {
    "vda_windows": _vda_windows, "ar1_scale": _ar1_scale, "shimmer": _shimmer, "drift": _drift,
    "moving_objects": _moving_objects, "camera_motion": _camera_motion,
}


def simulate_family(family: str, depth: torch.Tensor, seed: int, *,
                    dynamic: torch.Tensor | None = None,
                    poses: torch.Tensor | None = None) -> torch.Tensor:
    """Teacher depth of one family (deterministic in `seed`).

    Args:
        family: One of `FAMILIES`.
        depth: Metric ground truth ``[T, H, W]`` (positive).
        seed: Seed of every random choice.
        dynamic: Bool ``[T, H, W]`` moving-object mask (``moving_objects`` needs it).
        poses: Camera-to-world ``[T, 4, 4]`` (``camera_motion`` needs them).

    Returns:
        Teacher depth ``[T, H, W]`` float32, positive.

    Raises:
        UnknownFamilyError: Unknown family, or its mask / poses missing.
    """
    if family == "classic":
        return simulate_teacher(depth, seed)
    if family not in _APPLY:
        raise UnknownFamilyError(f"unknown teacher family {family!r}; available: {', '.join(FAMILIES)}")
    rng = np.random.default_rng(seed)
    ell = torch.log(depth.float())
    out = _APPLY[family](rng, ell, _persistent(rng, ell), dynamic=dynamic, poses=poses)
    return torch.exp(out).clamp_min(0.05 * float(depth.min()))
