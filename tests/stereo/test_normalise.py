"""Disparity conversion and the streaming, non-pumping disparity range."""
from __future__ import annotations

import math

import pytest
import torch

from vdp.stereo.normalise import (StreamingRange, depth_to_disparity, frame_percentiles,
                                  minmax_ranges, normalise)


def test_metric_depth_becomes_inverse_depth_and_relative_is_kept():
    z = torch.tensor([[[2.0, 4.0], [0.0, float("inf")]]])
    d = depth_to_disparity(z, "metric")
    assert torch.allclose(d[0, 0], torch.tensor([0.5, 0.25]))
    assert abs(float(d[0, 1, 0]) - 1000.0) < 1e-3 and d[0, 1, 1] == 0.0  # clamped at 1 mm; z = inf -> 0
    rel = torch.tensor([[[1.0, float("nan")], [3.0, 2.0]]])
    out = depth_to_disparity(rel, "relative")
    assert out[0, 0, 1] == 1.0  # non-finite -> the frame's lowest value
    with pytest.raises(ValueError, match="depth kind"):
        depth_to_disparity(z, "absolute")


def test_percentiles_ignore_outlier_pixels():
    d = torch.linspace(0, 1, 100 * 100).view(1, 100, 100).clone()
    d[0, 0, 0] = 1e6
    lo, hi = frame_percentiles(d, 2, 98)[0].tolist()
    assert abs(lo - 0.02) < 0.01 and abs(hi - 0.98) < 0.01
    assert minmax_ranges(d)[0, 1] == 1e6


def test_range_opens_before_a_near_object_arrives_and_closes_slowly():
    stats = torch.tensor([[0.0, 1.0]] * 40 + [[0.0, 2.0]] * 5 + [[0.0, 1.0]] * 40)
    rng = StreamingRange(lookahead_frames=8, release_frames=30)
    ranges = torch.cat([rng.push(stats), rng.finish()])
    hi = ranges[:, 1]
    assert len(ranges) == len(stats)
    assert hi[:32].eq(1.0).all()                     # nothing moves before the lookahead sees it
    assert hi[32] > 1.0 and hi[40] >= 1.95           # open (95 %) when the object arrives
    assert (hi[1:] - hi[:-1]).abs().max() <= 0.33    # no jump
    assert 1.2 < hi[60] < hi[45]                     # closes slowly


def test_ranges_do_not_depend_on_batch_sizes():
    g = torch.Generator().manual_seed(0)
    stats = torch.rand(50, 2, generator=g, dtype=torch.float64) * torch.tensor([1.0, 1.0]) \
        + torch.tensor([0.0, 2.0])
    whole = StreamingRange(lookahead_frames=5)
    a = torch.cat([whole.push(stats), whole.finish()])
    parts = StreamingRange(lookahead_frames=5)
    outs = [parts.push(stats[i:i + n]) for i, n in ((0, 3), (3, 1), (4, 17), (21, 29))]
    b = torch.cat([*outs, parts.finish()])
    assert torch.equal(a, b)
    assert parts.emitted == 50 and parts.pending == 0


def test_lookahead_bounds_the_delay():
    rng = StreamingRange(lookahead_frames=4)
    assert len(rng.push(torch.zeros(3, 2))) == 0
    assert len(rng.push(torch.zeros(2, 2))) == 1
    assert rng.pending == 4
    instant = StreamingRange(lookahead_frames=0)
    out = instant.push(torch.tensor([[0.0, 1.0], [0.0, 5.0]]))
    assert out[1, 1] == 5.0  # no lookahead: the range follows at once


def test_jitter_is_damped_compared_with_per_frame_ranges():
    g = torch.Generator().manual_seed(1)
    stats = torch.tensor([[0.0, 1.0]]).repeat(200, 1).double()
    stats += 0.1 * torch.randn(200, 2, generator=g, dtype=torch.float64)
    rng = StreamingRange(lookahead_frames=8)
    ours = torch.cat([rng.push(stats), rng.finish()])
    change = lambda r: float((r[1:] - r[:-1]).abs().mean())  # noqa: E731
    assert change(ours) < 0.2 * change(stats)


def test_normalise_clips_and_handles_flat_frames():
    d = torch.tensor([[[0.0, 1.0, 2.0, 3.0]], [[5.0, 5.0, 5.0, 5.0]]])
    n = normalise(d, torch.tensor([[1.0, 2.0], [5.0, 5.0]], dtype=torch.float64))
    assert n[0, 0].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert n[1].eq(0.5).all()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="lookahead_frames"):
        StreamingRange(lookahead_frames=-1)
    with pytest.raises(ValueError, match="release_frames"):
        StreamingRange(release_frames=0)
    with pytest.raises(ValueError, match=r"stats must be \[T,2\]"):
        StreamingRange().push(torch.zeros(3))
    assert math.isclose(StreamingRange(lookahead_frames=1).attack, 0.95)
