"""Procedural scenes and the teacher simulator."""
from __future__ import annotations

import torch

from vdp.refiner.metrics import static_mask, tae_sums
from vdp.refiner.synthetic import FAR_M, NEAR_M, render_clip
from vdp.refiner.teacher import edge_band, simulate_teacher


def test_render_is_deterministic_and_metric():
    a = render_clip(5, frames=6, height=24, width=32)
    b = render_clip(5, frames=6, height=24, width=32)
    c = render_clip(6, frames=6, height=24, width=32)
    assert torch.equal(a.depth, b.depth) and torch.equal(a.rgb, b.rgb)
    assert not torch.equal(a.depth, c.depth)
    assert a.rgb.shape == (6, 3, 24, 32) and a.rgb.dtype == torch.uint8
    assert float(a.depth.min()) >= NEAR_M and float(a.depth.max()) <= FAR_M
    assert a.intrinsics.shape == (3, 3) and a.poses.shape == (6, 4, 4)
    rot = a.poses[:, :3, :3]
    torch.testing.assert_close(rot @ rot.transpose(1, 2), torch.eye(3).expand(6, 3, 3), atol=1e-5, rtol=0)


def test_depth_poses_and_intrinsics_agree():
    clip = render_clip(21, frames=4, height=48, width=64)
    valid = clip.depth > 0
    total, count = tae_sums(clip.depth, clip.depth, valid, clip.dynamic, clip.intrinsics, clip.poses)
    assert count > 0.5 * clip.depth[0].numel()          # most pixels reproject consistently
    assert total / count < 1e-3
    jitter = clip.depth.clone()
    jitter[1::2] *= 1.05                                 # odd frames 5 % too far
    total_j, count_j = tae_sums(jitter, clip.depth, valid, clip.dynamic, clip.intrinsics, clip.poses)
    assert 0.03 < total_j / count_j < 0.07


def test_teacher_flickers_and_keeps_scale():
    clip = render_clip(3, frames=24, height=32, width=48)
    t1 = simulate_teacher(clip.depth, 1)
    assert torch.equal(t1, simulate_teacher(clip.depth, 1))
    assert bool((t1 > 0).all())
    static = static_mask(clip.depth, clip.depth > 0)
    flick = lambda d: float((torch.log(d[1:]) - torch.log(d[:-1])).abs()[static].mean())  # noqa: E731
    strong = [simulate_teacher(clip.depth, s) for s in range(6)]
    assert max(flick(t) for t in strong) > 5 * flick(clip.depth)
    ratio = torch.tensor([float(t.median() / clip.depth.median()) for t in strong])
    assert float((ratio - 1).abs().max()) < 0.25
    weak = [simulate_teacher(clip.depth, s, strength=0.0) for s in range(6)]
    assert max(flick(t) for t in weak) < 1.5 * flick(clip.depth) + 1e-4


def test_edge_band_marks_discontinuities():
    ell = torch.zeros(1, 10, 10)
    ell[:, :, 5:] = 1.0
    band = edge_band(ell, width=1)
    assert bool(band[0, :, 4:6].all()) and not bool(band[0, :, :3].any())
