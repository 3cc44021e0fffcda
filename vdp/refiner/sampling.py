"""Training samples: two overlapping windows of a clip, exactly as the stream runs them.

A sample is a segment of a ground-truth clip with a freshly simulated teacher (or the real
teacher of an RGB-D sequence). Two consecutive windows (starts ``a`` and ``a + stride``, with
their context keyframes) go through the model, and their residuals are blended over the
``N + stride`` frames they cover with the same weights as at inference, so training optimises
the output users get, window joins included. Patterns mixed in: the start of a stream (context
keyframes clamped to frame 0) and the end of a stream (last frames repeated).
Augmentations: time reversal, horizontal flip, teacher jitter on the model input (scale
~U(0.97, 1.03) per frame, 1 % relative noise; the losses see the clean teacher), and relative
(disparity) mode through the same pseudo-depth mapping the stage uses. Teachers come from
the families in ``SamplingOptions.families`` (default: v0's ``classic`` simulator only).
Clips with RGB (for an RGB refiner) get the same flips, plus a per-sample colour gain and
per-frame sensor noise (so that a still camera's noise is not read as motion). Clips with
camera poses carry them (mirrored and reversed with the frames) for the reprojection loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vdp.models.refiner.config import RefinerConfig
from vdp.refiner.depth_kind import reference_scale, to_pseudo_depth
from vdp.refiner.reprojection import Geometry
from vdp.refiner.rgbd import fill_holes
from vdp.refiner.families import simulate_family
from vdp.refiner.teacher import simulate_teacher
from vdp.refiner.windows import window_input_indices


@dataclass
class ClipPool:
    """Ground-truth clips to sample from.

    Attributes:
        depth: Per clip, metric ground truth ``[T, H, W]`` (0 = no data); all the same H, W.
        teacher: Per clip, a real teacher ``[T, H, W]`` or None (then it is simulated).
        rgb: Per clip, its video frames uint8 ``[T, 3, H, W]`` (an RGB refiner's pool), or None
            (a depth-only pool).
        intrinsics: Per clip ``[3, 3]`` or None (no geometry; also None for the whole pool).
        poses: Per clip camera-to-world ``[T, 4, 4]`` or None.
        dynamic: Per clip bool ``[T, H, W]`` moving-object mask or None (none move).
    """

    depth: list[torch.Tensor]
    teacher: list[torch.Tensor | None]
    rgb: list[torch.Tensor] | None = None
    intrinsics: list[torch.Tensor | None] | None = None
    poses: list[torch.Tensor | None] | None = None
    dynamic: list[torch.Tensor | None] | None = None


@dataclass
class TrainBatch:
    """One training batch.

    Attributes:
        windows: Model inputs ``[2B, K+N, H, W]`` (item b's windows at 2b and 2b+1).
        inp: Model input at the target frames ``[B, F, H, W]`` (F = N + stride).
        teacher: Clean teacher at the target frames ``[B, F, H, W]``.
        gt: Ground truth at the target frames ``[B, F, H, W]`` (0 = no data).
        valid: Bool ``[B, F, H, W]``: ground truth valid and frame inside the stream.
        rgb: The windows' video frames uint8 ``[2B, K+N, 3, H, W]``, or None (depth-only pool).
        geometry: Camera facts of the target frames (`vdp.refiner.reprojection.Geometry`), or
            None when the pool has no poses.
    """

    windows: torch.Tensor
    inp: torch.Tensor
    teacher: torch.Tensor
    gt: torch.Tensor
    valid: torch.Tensor
    rgb: torch.Tensor | None = None
    geometry: Geometry | None = None


@dataclass(frozen=True)
class SamplingOptions:
    """Probabilities of the sample patterns and augmentations."""

    stream_start: float = 0.15
    stream_end: float = 0.1
    jitter: float = 0.5
    jitter_scale: float = 0.03
    jitter_noise: float = 0.01
    relative: float = 0.2
    rgb_gain: float = 0.2
    rgb_noise: float = 3.0
    families: tuple[str, ...] = ("classic",)


def _sample(pool: ClipPool, config: RefinerConfig, rng: np.random.Generator, seed: int,
            opts: SamplingOptions):
    n, stride = config.window_frames, config.stride_frames
    j = int(rng.integers(len(pool.depth)))
    clip, real_teacher = pool.depth[j], pool.teacher[j]
    start = rng.random() < opts.stream_start
    a = 0 if start else n                       # first window start inside the segment
    length = a + n + stride
    if clip.shape[0] < length:
        raise ValueError(f"clip {j} has {clip.shape[0]} frames, samples need {length}")
    o = int(rng.integers(0, clip.shape[0] - length + 1))
    gt = clip[o:o + length]
    teacher = None if real_teacher is None else real_teacher[o:o + length]
    rgb = None if pool.rgb is None else pool.rgb[j][o:o + length]
    geo = _clip_geometry(pool, j, o, length, gt.shape)
    if rng.random() < 0.5:
        gt = gt.flip(0)
        teacher = None if teacher is None else teacher.flip(0)
        rgb = None if rgb is None else rgb.flip(0)
        geo = None if geo is None else (geo[0], geo[1].flip(0), geo[2].flip(0), geo[3])
    if rng.random() < 0.5:
        gt = gt.flip(2)
        teacher = None if teacher is None else teacher.flip(2)
        rgb = None if rgb is None else rgb.flip(3)
        geo = None if geo is None else _mirror(geo, gt.shape[2])
    if teacher is None:
        filled = gt if bool((gt > 0).all()) else fill_holes(gt)
        if opts.families == ("classic",):
            teacher = simulate_teacher(filled, seed)      # v0's stream of random draws
        else:
            teacher = simulate_family(opts.families[seed % len(opts.families)], filled, seed)
    inp = teacher
    if rng.random() < opts.jitter:
        s = torch.from_numpy(rng.uniform(1 - opts.jitter_scale, 1 + opts.jitter_scale, length)).float()
        noise = torch.from_numpy(rng.standard_normal(teacher.shape)).float()
        inp = teacher * s[:, None, None] * (1 + opts.jitter_noise * noise)
        inp = inp.clamp_min(0.5 * float(teacher.min()))
    valid = gt > 0
    metric = True
    if rng.random() < opts.relative:
        metric = False
        # Disparity with an unknown shift, through the stage's pseudo-depth mapping.
        shift = float(rng.uniform(0.0, 0.3)) * float((1.0 / teacher).median())
        disp = lambda x: 1.0 / x + shift  # noqa: E731
        m0 = reference_scale(disp(inp[0]))
        inp, teacher = to_pseudo_depth(disp(inp), m0), to_pseudo_depth(disp(teacher), m0)
        gt = torch.where(valid, to_pseudo_depth(disp(gt.clamp_min(1e-3)), m0), torch.zeros_like(gt))
    last = length - 1
    if rng.random() < opts.stream_end:
        last = length - 1 - int(rng.integers(1, stride))
    idx = [window_input_indices(s, last, config) for s in (a, a + stride)]
    windows = torch.stack([inp[i] for i in idx])
    target = [min(a + f, last) for f in range(n + stride)]
    inside = torch.tensor([a + f <= last for f in range(n + stride)])[:, None, None]
    rgb_windows = None
    if rgb is not None:
        rgb = _augment_rgb(rng, rgb, opts)
        rgb_windows = torch.stack([rgb[i] for i in idx])
    if geo is not None:
        geo = (geo[0], geo[1][target], geo[2][target], geo[3] and metric)
    return windows, inp[target], teacher[target], gt[target], valid[target] & inside, rgb_windows, geo


def _clip_geometry(pool: ClipPool, j: int, o: int, length: int, shape: torch.Size):
    """(intrinsics, poses, dynamic, known) of frames ``o .. o+length-1`` of clip j, or None."""
    if pool.poses is None:
        return None
    poses, k = pool.poses[j], pool.intrinsics[j] if pool.intrinsics is not None else None
    if poses is None or k is None:
        return torch.eye(3), torch.eye(4).repeat(length, 1, 1), torch.zeros(shape, dtype=torch.bool), False
    dyn = pool.dynamic[j] if pool.dynamic is not None else None
    dyn = torch.zeros(shape, dtype=torch.bool) if dyn is None else dyn[o:o + length]
    return k.float(), poses[o:o + length].float(), dyn, True


def _mirror(geo, width: int):
    """Geometry of horizontally mirrored frames: the camera's x axis flips."""
    k, poses, dyn, known = geo
    k = k.clone()
    k[0, 2] = (width - 1) - k[0, 2]
    flip = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0]))
    return k, poses @ flip, dyn.flip(2), known


def _augment_rgb(rng: np.random.Generator, rgb: torch.Tensor, opts: SamplingOptions) -> torch.Tensor:
    """Colour gain per channel and per-frame Gaussian sensor noise (uint8 in and out)."""
    gain = torch.from_numpy(rng.uniform(1 - opts.rgb_gain, 1 + opts.rgb_gain, 3)).float()
    sigma = float(rng.uniform(0.0, opts.rgb_noise))
    noise = torch.from_numpy(rng.standard_normal(rgb.shape)).float() * sigma
    return (rgb.float() * gain[:, None, None] + noise).round().clamp(0, 255).to(torch.uint8)


def make_batch(pool: ClipPool, config: RefinerConfig, batch: int, seed: int, step: int,
               opts: SamplingOptions = SamplingOptions()) -> TrainBatch:
    """The batch of a training step: a pure function of ``(seed, step)``."""
    items = []
    for b in range(batch):
        rng = np.random.default_rng([seed, step, b])
        items.append(_sample(pool, config, rng, int(rng.integers(2 ** 31)), opts))
    windows, inp, teacher, gt, valid = (torch.stack(x) for x in list(zip(*items))[:5])
    rgb = None if items[0][5] is None else torch.stack([x[5] for x in items]).flatten(0, 1)
    geometry = None
    if items[0][6] is not None:
        k, poses, dyn, known = zip(*(x[6] for x in items))
        geometry = Geometry(torch.stack(k), torch.stack(poses), torch.stack(dyn), torch.tensor(known))
    return TrainBatch(windows=windows.flatten(0, 1), inp=inp, teacher=teacher, gt=gt, valid=valid,
                      rgb=rgb, geometry=geometry)
