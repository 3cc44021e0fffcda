"""Window pattern and streaming blend: exact coverage, batching independence, bounded memory."""
from __future__ import annotations

import pytest
import torch

from vdp.models.refiner.config import RefinerConfig
from vdp.refiner.windows import (StreamState, WindowedStream, blend_weights, limit_frame_shift,
                                 refine_sequence, window_input_indices)

CFG = RefinerConfig()


def _fake_window(calls: list):
    """A window function whose output depends on every input frame and on the position."""
    def run(depth: torch.Tensor, start: int, rgb=None) -> torch.Tensor:
        calls.append(start)
        n = CFG.window_frames
        k = CFG.context_frames
        mean = depth.mean(0, keepdim=True)
        pos = torch.arange(n, dtype=depth.dtype)[:, None, None]
        return 0.01 * torch.tanh(depth[k:] - mean) + 1e-3 * pos
    return run


def test_window_indices_pattern():
    assert window_input_indices(0, 100, CFG) == [0, 0, 0] + list(range(12))
    assert window_input_indices(18, 100, CFG) == [6, 10, 14] + list(range(18, 30))
    assert window_input_indices(6, 9, CFG) == [0, 0, 2] + [6, 7, 8, 9] + [9] * 8


def test_blend_weights_positive_and_symmetric():
    w = blend_weights(CFG)
    assert w.shape == (12,) and bool((w > 0).all())
    torch.testing.assert_close(w, w.flip(0))
    assert float(w.max()) == pytest.approx((1 - 1 / 12) ** 2)


@pytest.mark.parametrize("length", [1, 5, 12, 13, 17, 18, 40])
def test_batching_does_not_change_the_output(length):
    g = torch.Generator().manual_seed(length)
    depth = torch.rand(length, 6, 7, generator=g) + 0.5
    ref = refine_sequence(CFG, _fake_window([]), depth)
    assert ref.shape == depth.shape
    for chunk in (1, 5, 12):
        stream = WindowedStream(CFG, _fake_window([]))
        state, outs = StreamState(), []
        for i in range(0, length, chunk):
            out, state = stream.push(state, depth[i:i + chunk])
            outs.append(out)
        outs.append(stream.flush(state))
        assert torch.equal(torch.cat(outs), ref)


def test_frames_are_emitted_when_final_and_memory_is_bounded():
    calls: list[int] = []
    stream = WindowedStream(CFG, _fake_window(calls))
    state = StreamState()
    emitted = 0
    for i in range(60):
        out, state = stream.push(state, torch.full((1, 4, 4), 1.0 + i))
        emitted += out.shape[0]
        assert state.received - emitted <= CFG.window_frames + CFG.stride_frames - 1
        assert len(state.teacher) <= 2 * CFG.window_frames + CFG.stride_frames
    emitted += stream.flush(state).shape[0]
    assert emitted == 60
    assert calls == list(range(0, 60, 6))     # every grid window once, in order


def test_constant_residual_passes_through_blend():
    def run(depth: torch.Tensor, start: int, rgb=None) -> torch.Tensor:
        return torch.full_like(depth[CFG.context_frames:], 0.02)
    depth = torch.rand(23, 3, 3) + 1
    out = refine_sequence(CFG, run, depth)
    torch.testing.assert_close(out, depth * torch.exp(torch.tensor(0.02)))


def _shifting_window(depth: torch.Tensor, start: int, rgb=None) -> torch.Tensor:
    """Large per-frame global shifts (+-5 %) plus a local pattern."""
    k = CFG.context_frames
    n = CFG.window_frames
    pos = torch.arange(n, dtype=depth.dtype)
    shift = 0.05 * torch.sin(pos + start)[:, None, None]
    return shift + 0.01 * torch.tanh(depth[k:] - depth[k:].mean())


def test_frame_shift_limit_bounds_each_frames_median_and_keeps_local_detail():
    g = torch.Generator().manual_seed(3)
    depth = torch.rand(31, 6, 7, generator=g) + 0.5
    free = refine_sequence(CFG, _shifting_window, depth)
    lim = refine_sequence(CFG, _shifting_window, depth, max_frame_shift=0.003)
    shift_free = torch.log(free / depth).flatten(1).median(1).values
    shift_lim = torch.log(lim / depth).flatten(1).median(1).values
    assert float(shift_free.abs().max()) > 0.02                  # the windows moved frames a lot
    assert float(shift_lim.abs().max()) <= 0.003 + 1e-5           # the limit holds on every frame
    # only a per-frame constant changed: the local pattern of every frame is untouched
    diff = torch.log(lim) - torch.log(free)
    torch.testing.assert_close(diff, diff[:, :1, :1].expand_as(diff), rtol=0, atol=1e-5)
    zero = refine_sequence(CFG, _shifting_window, depth, max_frame_shift=0.0)
    assert float(torch.log(zero / depth).flatten(1).median(1).values.abs().max()) <= 1e-6
    # frames already inside the limit are left as they were
    small = limit_frame_shift(torch.full((3, 3), 0.001), 0.003)
    torch.testing.assert_close(small, torch.full((3, 3), 0.001))


def test_frame_shift_limit_keeps_batching_independence():
    depth = torch.rand(29, 5, 6, generator=torch.Generator().manual_seed(9)) + 0.5
    ref = refine_sequence(CFG, _shifting_window, depth, max_frame_shift=0.01)
    stream = WindowedStream(CFG, _shifting_window, max_frame_shift=0.01)
    state, outs = StreamState(), []
    for i in range(0, 29, 4):
        out, state = stream.push(state, depth[i:i + 4])
        outs.append(out)
    outs.append(stream.flush(state))
    assert torch.equal(torch.cat(outs), ref)


@pytest.mark.parametrize("bad", [-0.01, float("nan")])
def test_frame_shift_limit_refuses_negative_or_nan(bad):
    with pytest.raises(ValueError, match="max_frame_shift"):
        WindowedStream(CFG, _shifting_window, max_frame_shift=bad)
    with pytest.raises(ValueError, match="max_frame_shift"):
        limit_frame_shift(torch.zeros(2, 2), bad)


def _rgb_window(depth: torch.Tensor, start: int, rgb) -> torch.Tensor:
    """Checks that each window gets the RGB of its own frames; the output depends on it."""
    assert rgb is not None and rgb.shape[0] == depth.shape[0]
    torch.testing.assert_close(rgb[:, 0, 0, 0].float(), depth[:, 0, 0] % 256)
    return 0.001 * rgb[CFG.context_frames:, 1].float() + 0.01 * torch.tanh(depth[CFG.context_frames:])


def test_rgb_travels_with_its_frames_whatever_the_batching():
    depth = torch.arange(1.0, 31.0)[:, None, None].expand(30, 4, 4).clone()
    rgb = torch.randint(0, 256, (30, 3, 4, 4), dtype=torch.uint8)
    rgb[:, 0] = torch.arange(1, 31, dtype=torch.uint8)[:, None, None]
    ref = refine_sequence(CFG, _rgb_window, depth, rgb=rgb)
    assert not torch.allclose(ref, refine_sequence(CFG, _rgb_window, depth, rgb=rgb.roll(1, 2)))
    for size in (1, 7):
        stream = WindowedStream(CFG, _rgb_window)
        state = StreamState()
        parts = []
        for i in range(0, 30, size):
            out, state = stream.push(state, depth[i:i + size], rgb[i:i + size])
            parts.append(out)
            assert set(state.rgb) == set(state.teacher)          # kept and dropped together
        parts.append(stream.flush(state))
        torch.testing.assert_close(torch.cat(parts), ref, rtol=0, atol=0)


def test_a_stream_gets_rgb_always_or_never():
    stream = WindowedStream(CFG, _rgb_window)
    state = StreamState()
    rgb = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    _, state = stream.push(state, torch.ones(2, 4, 4), rgb)
    with pytest.raises(ValueError, match="every batch or with none"):
        stream.push(state, torch.ones(2, 4, 4))
    with pytest.raises(ValueError, match="does not match depth"):
        WindowedStream(CFG, _rgb_window).push(StreamState(), torch.ones(2, 4, 4), rgb[:, :, :2])
