"""Reprojection loss: TAE's differentiable twin, and the geometry that training samples carry."""
from __future__ import annotations

import torch

from vdp.models.refiner import PRESETS
from vdp.refiner.families import simulate_family
from vdp.refiner.metrics import tae_sums
from vdp.refiner.reprojection import Geometry, reprojection_loss
from vdp.refiner.sampling import ClipPool, SamplingOptions, make_batch
from vdp.refiner.synthetic import render_clip


def _geometry(clip, poses=None, dynamic=None, k=None) -> Geometry:
    return Geometry((clip.intrinsics if k is None else k)[None],
                    (clip.poses if poses is None else poses)[None],
                    (clip.dynamic if dynamic is None else dynamic)[None], torch.tensor([True]))


def test_loss_is_zero_on_ground_truth_and_equals_tae_on_a_teacher():
    clip = render_clip(900_001, frames=16, height=48, width=64)
    teacher = simulate_family("camera_motion", clip.depth, 5, poses=clip.poses)
    valid = (clip.depth > 0)[None]
    gt_loss = reprojection_loss(torch.log(clip.depth)[None], clip.depth[None], valid, _geometry(clip))
    loss = reprojection_loss(torch.log(teacher)[None], clip.depth[None], valid, _geometry(clip))
    total, count = tae_sums(teacher, clip.depth, clip.depth > 0, clip.dynamic, clip.intrinsics,
                            clip.poses)
    assert float(gt_loss) < 1e-3 and float(loss) > 10 * float(gt_loss)
    assert abs(float(loss) / (total / count) - 1) < 0.02


def test_gradient_reaches_every_frame_and_unknown_geometry_is_skipped():
    clip = render_clip(900_002, frames=6, height=32, width=48)
    out = torch.log(clip.depth * 1.03)[None].requires_grad_()
    out_scaled = out + 0.02 * torch.arange(6.0)[None, :, None, None]       # a scale drift
    loss = reprojection_loss(out_scaled, clip.depth[None], (clip.depth > 0)[None], _geometry(clip))
    loss.backward()
    assert float(loss.detach()) > 0.01 and bool((out.grad.abs().sum(dim=(2, 3)) > 0).all())
    unknown = Geometry(clip.intrinsics[None], clip.poses[None], clip.dynamic[None], torch.tensor([False]))
    assert float(reprojection_loss(out_scaled, clip.depth[None], (clip.depth > 0)[None], unknown)) == 0.0


def test_samples_mirror_and_reverse_the_camera_with_the_frames():
    """Whatever flips a sample got, its ground truth reprojects onto itself with its geometry."""
    clip = render_clip(1_234, frames=40, height=32, width=48)
    pool = ClipPool(depth=[clip.depth], teacher=[None], intrinsics=[clip.intrinsics],
                    poses=[clip.poses], dynamic=[clip.dynamic])
    opts = SamplingOptions(relative=0.0)
    seen = set()
    for step in range(10):
        b = make_batch(pool, PRESETS["v0"], 1, seed=2, step=step, opts=opts)
        g = b.geometry
        assert bool(g.known.all())
        seen.add(float(g.poses[0, 0, 0, 0]) * float(clip.poses[0, 0, 0]) < 0)    # x axis mirrored
        loss = reprojection_loss(torch.log(b.gt.clamp_min(1e-6)), b.gt, b.valid, g)
        assert float(loss) < 1e-3, step
    assert seen == {True, False}
    relative = make_batch(pool, PRESETS["v0"], 1, seed=2, step=0, opts=SamplingOptions(relative=1.0))
    assert not bool(relative.geometry.known.any())          # disparity samples have no metric geometry
