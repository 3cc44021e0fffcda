"""Merging chunk results: LSQ alignment of relative depth, cross-fades, warm-up-only layers."""
from __future__ import annotations

import pytest
import torch

from vdp.engine.chunks import plan_chunks
from vdp.engine.merge import (FIT_BLOCK, ChunkMerger, Fit, Gathered, crossfade, crossfade_weights, fit_scale_shift,
                              merge_policies)
from vdp.spec import ChunkingSpec
from vdp.types import FrameBatch

N, H, W = 60, 6, 5
CHUNKS = plan_chunks(N, ChunkingSpec(enabled=True, chunk_frames=16, overlap_frames=6))


def reference() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return {"depth": torch.rand(N, H, W, generator=gen) + 0.5, "alpha": torch.rand(N, H, W, generator=gen)}


def chunk_batches(chunk, layers: dict[str, torch.Tensor], batch: int = 5):
    for a in range(chunk.run_start, chunk.stop, batch):
        b = min(a + batch, chunk.stop)
        idx = torch.arange(a, b)
        yield FrameBatch(torch.full((b - a, 3, H, W), a % 256, dtype=torch.uint8), idx, idx.double() / 30,
                         {k: v[a:b] for k, v in layers.items()})


def merge(policies, per_chunk_layers, batch: int = 5) -> FrameBatch:
    out: list[FrameBatch] = []
    merger = ChunkMerger(CHUNKS, policies, out.append)
    for chunk, layers in zip(CHUNKS, per_chunk_layers):
        for b in chunk_batches(chunk, layers, batch):
            merger.feed(b)
        merger.end_chunk()
    merger.finish()
    return FrameBatch.concat(out)


def test_fit_recovers_scale_and_shift_and_ignores_non_finite():
    x = torch.rand(4, 8, 8, generator=torch.Generator().manual_seed(0))
    y = 2.5 * x - 0.75
    x[0, 0, 0] = float("nan")
    fit = fit_scale_shift(x, y)
    assert fit.scale == pytest.approx(2.5, rel=1e-6) and fit.shift == pytest.approx(-0.75, abs=1e-6)
    assert fit.residual_rms < 1e-6 and not fit.degenerate


def test_fit_over_frames_of_several_blocks_masks_only_non_finite_pixels():
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(3, 2 * FIT_BLOCK // 100 + 7, 100, generator=gen)  # each frame spans 3 blocks
    y = 0.8 * x + 2.0 + 0.01 * torch.randn(x.shape, generator=gen)
    ok = torch.ones(x.shape, dtype=torch.bool)
    x[1, 5, 3], y[2, 600, 0], y[2, 601, 0] = float("inf"), float("nan"), float("-inf")
    ok[1, 5, 3] = ok[2, 600, 0] = ok[2, 601, 0] = False
    fit = fit_scale_shift(x, y)
    xs, ys = x[ok].double(), y[ok].double()  # the plain least-squares line over the finite pixels
    a = float(((xs - xs.mean()) * (ys - ys.mean())).sum() / ((xs - xs.mean()) ** 2).sum())
    assert fit.scale == pytest.approx(a, rel=1e-9)
    assert fit.shift == pytest.approx(float(ys.mean() - a * xs.mean()), rel=1e-9)
    assert fit.residual_rms == pytest.approx(0.01, rel=0.05)


def test_fit_apply_is_the_float32_product_and_sum():
    x = torch.rand(3, 40, 50, generator=torch.Generator().manual_seed(4)) * 300 - 20
    fit = Fit(1.0123456789, -0.3141592653)
    mapped = fit.apply(x)
    assert mapped.dtype == torch.float32 and mapped.data_ptr() != x.data_ptr()
    assert torch.equal(mapped, x * fit.scale + fit.shift)
    assert torch.equal(fit.apply(x.double()), x.double() * fit.scale + fit.shift)
    assert Fit().apply(x) is x
    out = torch.full((3, 40, 50), float("nan"))  # into given memory (the chunk writers' reused buffer)
    assert fit.apply(x, out) is out and torch.equal(out, mapped)
    with pytest.raises(ValueError, match="shaped"):
        fit.apply(x, torch.empty(2, 40, 50))


def test_constant_overlap_fits_shift_only():
    fit = fit_scale_shift(torch.full((2, 3, 3), 4.0), torch.full((2, 3, 3), 1.0))
    assert fit.degenerate and fit.scale == 1.0 and fit.shift == pytest.approx(-3.0)


def test_relative_depth_chunks_with_random_affines_merge_to_the_reference():
    ref = reference()
    gen = torch.Generator().manual_seed(7)
    per_chunk = []
    for c in CHUNKS:
        s, t = (1.0, 0.0) if c.index == 0 else (0.2 + 3 * float(torch.rand(1, generator=gen)), float(torch.randn(1, generator=gen)))
        per_chunk.append({"depth": ref["depth"] * s + t, "alpha": ref["alpha"]})
    merged = merge(merge_policies("relative"), per_chunk)
    assert merged.indices.tolist() == list(range(N))
    torch.testing.assert_close(merged.layers["depth"], ref["depth"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(merged.layers["alpha"], ref["alpha"], rtol=0, atol=0)


def test_metric_depth_is_cross_faded_without_fit():
    ref = reference()
    per_chunk = [{"depth": ref["depth"] + c.index, "alpha": ref["alpha"]} for c in CHUNKS]
    merged = merge(merge_policies("metric"), per_chunk)
    c1 = CHUNKS[1]
    w = crossfade_weights(c1.overlap)
    got = merged.layers["depth"][c1.run_start:c1.start] - ref["depth"][c1.run_start:c1.start]
    # chunk 0 contributes +0, chunk 1 contributes +1: the seam ramps by the cross-fade weights
    torch.testing.assert_close(got, w.view(-1, 1, 1).expand_as(got), rtol=0, atol=1e-6)
    torch.testing.assert_close(merged.layers["depth"][c1.start:c1.stop - 6], ref["depth"][c1.start:c1.stop - 6] + 1)


def test_recurrent_layers_keep_the_earlier_chunk_on_the_overlap():
    ref = reference()
    per_chunk = [{"depth": ref["depth"], "alpha": ref["alpha"] + 10 * c.index} for c in CHUNKS]
    merged = merge(merge_policies("relative"), per_chunk)
    for c in CHUNKS:
        torch.testing.assert_close(merged.layers["alpha"][c.start:c.stop], ref["alpha"][c.start:c.stop] + 10 * c.index)


def test_batch_size_does_not_change_the_merge_and_reruns_are_ignored():
    ref = reference()
    per_chunk = [{"depth": ref["depth"] * (1 + c.index), "alpha": ref["alpha"]} for c in CHUNKS]
    a = merge(merge_policies("relative"), per_chunk, batch=1)
    b = merge(merge_policies("relative"), per_chunk, batch=7)
    assert torch.equal(a.layers["depth"], b.layers["depth"])
    # a chunk whose run failed part-way and ran again: the repeated frames are ignored
    out: list[FrameBatch] = []
    merger = ChunkMerger(CHUNKS, merge_policies("relative"), out.append)
    for chunk, layers in zip(CHUNKS, per_chunk):
        batches = list(chunk_batches(chunk, layers, 5))
        for bt in batches[:2] + batches:
            merger.feed(bt)
        merger.end_chunk()
    merger.finish()
    assert torch.equal(FrameBatch.concat(out).layers["depth"], a.layers["depth"])


def test_missing_frames_are_an_error():
    merger = ChunkMerger(CHUNKS, {}, lambda b: None)
    batches = list(chunk_batches(CHUNKS[0], reference()))
    merger.feed(batches[0])
    with pytest.raises(ValueError, match="chunk 0 expected frame 5 next"):
        merger.feed(batches[2])
    with pytest.raises(ValueError, match="chunk 0 ended at frame 5, expected 16"):
        merger.end_chunk()
    with pytest.raises(ValueError, match="depth_kind must be"):
        merge_policies("absolute")


@pytest.mark.parametrize("fit", [Fit(), Fit(1.37, -0.21)])
def test_crossfade_gives_the_tensor_expressions_values_exactly(fit: Fit) -> None:
    g = torch.Generator().manual_seed(3)
    prev, new = torch.randn(6, 9, 11, generator=g) * 40, torch.randn(6, 9, 11, generator=g) * 40
    prev[0, 0, 0], new[1, 2, 3], new[2, 0, 1] = float("nan"), float("inf"), -0.0
    w = crossfade_weights(6)
    wt = w.view(-1, 1, 1)
    want = prev * (1 - wt) + fit.apply(new) * wt
    got = crossfade(prev, new, fit, w)
    torch.testing.assert_close(got, want, rtol=0, atol=0, equal_nan=True)
    assert got.data_ptr() not in (prev.data_ptr(), new.data_ptr())
    half = crossfade(prev.half(), new.half(), fit, w)  # other dtypes: the tensor expression itself
    torch.testing.assert_close(half, prev.half() * (1 - wt.half()) + fit.apply(new.half()) * wt.half(),
                               rtol=0, atol=0, equal_nan=True)


def test_gathered_copies_consecutive_parts_once_into_one_batch():
    """A head or tail arriving in parts is one batch equal to their concatenation; channels-last
    frames stay channels-last; more frames than announced is an error."""
    def part(first: int, n: int) -> FrameBatch:
        frames = torch.randint(0, 255, (n, 3, 4, 5), dtype=torch.uint8).contiguous(memory_format=torch.channels_last)
        return FrameBatch(frames, torch.arange(first, first + n), torch.arange(first, first + n) / 25.0,
                          {"depth": torch.rand(n, 4, 5)})

    parts = [part(10, 3), part(13, 4), part(17, 1)]
    g = Gathered(8)
    for p in parts:
        g.add(p)
    assert g.full and g.nbytes == 8 * (60 + 80)
    got, want = g.take(), FrameBatch.concat(parts)
    assert torch.equal(got.frames, want.frames) and torch.equal(got.indices, want.indices)
    assert torch.equal(got.pts_seconds, want.pts_seconds) and torch.equal(got.layers["depth"], want.layers["depth"])
    assert got.frames.is_contiguous(memory_format=torch.channels_last)
    assert got.layers["depth"].data_ptr() not in {p.layers["depth"].data_ptr() for p in parts}  # a copy
    assert g.take() is None and g.count == 0
    g.add(part(0, 5))
    with pytest.raises(ValueError, match="9 frames gathered for 8"):
        g.add(part(5, 4))
