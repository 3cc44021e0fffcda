"""Running the refiner on sequences: the working-size limit for large (video-resolution) depth."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vdp.models.refiner import load_refiner
from vdp.refiner.inference import refine_depth
from vdp.refiner.synthetic import render_clip
from vdp.refiner.teacher import simulate_teacher
from vdp.refiner.windows import WORK_PIXELS, work_size


def test_work_size_keeps_small_frames_and_the_aspect_of_large_ones():
    assert work_size(96, 128) == (96, 128)
    assert work_size(518, 924) == (518, 924)
    for h, w in ((1080, 1920), (2160, 3840), (4320, 7680), (1920, 1080)):
        sh, sw = work_size(h, w)
        assert sh * sw <= WORK_PIXELS * 1.01 and abs(sh / sw - h / w) < 0.01


def test_large_frames_are_refined_at_the_working_size_and_the_residual_upsampled():
    model = load_refiner()
    clip = render_clip(31, frames=20, height=24, width=32)
    small = simulate_teacher(clip.depth, 4)
    big = small.repeat_interleave(2, 1).repeat_interleave(2, 2)                # 2x, nearest
    big_rgb = clip.rgb.repeat_interleave(2, 2).repeat_interleave(2, 3)
    seen: list[tuple[int, int]] = []
    hook = model.register_forward_hook(lambda m, args, out: seen.append(tuple(args[0].shape[2:])))
    try:
        out_small = refine_depth(model, small, rgb=clip.rgb)
        out_big = refine_depth(model, big, rgb=big_rgb, max_pixels=24 * 32)
        n_small = len(seen)
        refine_depth(model, big, rgb=big_rgb, max_pixels=None)
    finally:
        hook.remove()
    assert set(seen[:n_small]) == {(24, 32)} and set(seen[n_small:]) == {(48, 64)}
    assert out_big.shape == big.shape
    rho_small = torch.log(out_small / small)
    expect = F.interpolate(rho_small[:, None], size=(48, 64), mode="bilinear", align_corners=False)[:, 0]
    bound = torch.log1p(model.config.alpha + model.config.beta / big)
    expect = torch.minimum(torch.maximum(expect, -bound), bound)
    torch.testing.assert_close(torch.log(out_big / big), expect, rtol=0, atol=2e-5)
    assert bool(((out_big - big).abs() <= (model.config.alpha * big + model.config.beta) * (1 + 1e-5)).all())


def test_the_stage_shrinks_each_frame_once_whatever_the_batching():
    from vdp.refiner.windows import StreamState, WindowedStream

    calls = []

    def run(depth, start, rgb):
        calls.append((tuple(depth.shape), None if rgb is None else (tuple(rgb.shape), rgb.dtype)))
        return torch.zeros(model.config.window_frames, *depth.shape[1:])

    model = load_refiner()
    depth = torch.rand(20, 40, 60) + 1
    rgb = torch.randint(0, 256, (20, 3, 40, 60), dtype=torch.uint8)
    stream = WindowedStream(model.config, run, max_pixels=20 * 30)
    state = StreamState()
    outs = []
    for i in range(0, 20, 3):
        out, state = stream.push(state, depth[i:i + 3], rgb[i:i + 3])
        outs.append(out)
        assert all(tuple(v.shape) == (20, 30) for v in state.small.values())
        assert set(state.small) == set(state.teacher) == set(state.rgb)
    outs.append(stream.flush(state))
    torch.testing.assert_close(torch.cat(outs), depth)           # a zero residual: the teacher
    k = model.config.context_frames + model.config.window_frames
    assert calls and all(c == ((k, 20, 30), ((k, 3, 20, 30), torch.float32)) for c in calls)


def test_the_shipped_refiner_keeps_a_held_out_sequence_at_its_scale():
    # The residual is centred per window before its bound, so the bound's tanh and the window
    # blend may move a sequence's geometric-mean depth a little (measured <= 0.22 %), never more.
    from vdp.refiner.evaluate import synthetic_sequences
    from vdp.refiner.splits import TEST_SEED_BASE

    model = load_refiner()
    for family in ("camera_motion", "classic"):
        (seq,) = synthetic_sequences(TEST_SEED_BASE + 2, 1, frames=48, family=family)
        out = refine_depth(model, seq.teacher, rgb=seq.rgb)
        shift = float(torch.log(out / seq.teacher).mean())
        moved = float(torch.log(out / seq.teacher).abs().mean())
        assert abs(shift) < 0.005 and moved > 0.002, (family, shift, moved)  # refined, not rescaled
