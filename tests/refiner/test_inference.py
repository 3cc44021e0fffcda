"""Running the refiner on windows: the working-size limit for large (video-resolution) depth."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vdp.models.refiner import load_refiner
from vdp.refiner.inference import WORK_PIXELS, make_window_fn, refine_depth, work_size
from vdp.refiner.synthetic import render_clip
from vdp.refiner.teacher import simulate_teacher
from vdp.refiner.windows import window_input_indices


def test_work_size_keeps_small_frames_and_the_aspect_of_large_ones():
    assert work_size(96, 128) == (96, 128)
    assert work_size(518, 924) == (518, 924)
    for h, w in ((1080, 1920), (2160, 3840), (4320, 7680), (1920, 1080)):
        sh, sw = work_size(h, w)
        assert sh * sw <= WORK_PIXELS * 1.01 and abs(sh / sw - h / w) < 0.01


def test_large_windows_are_refined_at_the_working_size_and_upsampled():
    model = load_refiner()
    clip = render_clip(31, frames=15, height=24, width=32)
    teacher = simulate_teacher(clip.depth, 4)
    idx = window_input_indices(12, 14, model.config)
    small_depth, small_rgb = teacher[idx], clip.rgb[idx]
    big_depth = small_depth.repeat_interleave(2, 1).repeat_interleave(2, 2)     # 2x, nearest
    big_rgb = small_rgb.repeat_interleave(2, 2).repeat_interleave(2, 3)
    seen: list[tuple[int, int]] = []
    hook = model.register_forward_hook(lambda m, args, out: seen.append(tuple(args[0].shape[2:])))
    try:
        small = make_window_fn(model)(small_depth, 12, small_rgb)
        big = make_window_fn(model, max_pixels=24 * 32)(big_depth, 12, big_rgb)
        full = make_window_fn(model, max_pixels=10**9)(big_depth, 12, big_rgb)
    finally:
        hook.remove()
    assert seen == [(24, 32), (24, 32), (48, 64)]
    assert big.shape == full.shape == (12, 48, 64)
    k = model.config.context_frames
    bound = torch.log1p(model.config.alpha + model.config.beta / big_depth[k:])
    expect = F.interpolate(small[None], size=(48, 64), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(big, torch.minimum(torch.maximum(expect, -bound), bound))
    assert bool((big.abs() <= bound + 1e-7).all())


def test_refine_depth_keeps_the_bound_at_video_resolution():
    model = load_refiner()
    clip = render_clip(32, frames=14, height=60, width=80)
    teacher = simulate_teacher(clip.depth, 5)
    out = refine_depth(model, teacher, rgb=clip.rgb)
    bound = model.config.alpha * teacher + model.config.beta
    assert bool(((out - teacher).abs() <= bound * (1 + 1e-5)).all())
