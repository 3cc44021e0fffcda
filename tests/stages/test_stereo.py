"""StereoStage: layer shapes, lookahead buffering, batch-size invariance, errors, and a stable
disparity range on a real static-camera clip."""
from __future__ import annotations

import pytest
import torch

from tests.conftest import MEDIA
from tests.stereo.depth_fixture import synthetic_depth_stage
from vdp.errors import SpecError, StageError
from vdp.io import VideoSource
from vdp.spec import StereoSpec
from vdp.stages.stereo import HIGH_PCT, LOW_PCT, StereoStage
from vdp.stereo.normalise import StreamingRange, frame_percentiles, minmax_ranges
from vdp.types import FrameBatch, VideoInfo

H, W = 24, 32
INFO = VideoInfo("test", 20, 30.0, 20 / 30, W, H, "raw")


def clip(n: int = 20, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (n, 3, H, W), dtype=torch.uint8, generator=g)
    depth = torch.rand(n, H, W, generator=g) + torch.linspace(0, 1, n).view(n, 1, 1)
    return frames, depth


def run(stage: StereoStage, frames: torch.Tensor, depth: torch.Tensor, sizes: list[int],
        extra: bool = False) -> tuple[FrameBatch, list[int]]:
    state = stage.init_state(INFO)
    outs, emitted, i = [], [], 0
    for n in sizes:
        idx = torch.arange(i, i + n)
        layers = {"depth": depth[i:i + n]}
        if extra:
            layers["alpha"] = idx.float().view(-1, 1, 1).expand(n, H, W)
        out, state = stage.process(FrameBatch(frames[i:i + n], idx, idx / 30.0, layers), state)
        outs.append(out)
        emitted.append(len(out))
        i += n
    last = stage.flush(state)
    if last is not None:
        outs.append(last)
    return FrameBatch.concat(outs), emitted


def make(**spec) -> StereoStage:
    stage = StereoStage(StereoSpec(**spec))
    stage.setup("cpu")
    return stage


def test_adds_stereo_layer_for_every_frame_in_order():
    frames, depth = clip()
    out, _ = run(make(), frames, depth, [7, 7, 6], extra=True)
    assert out.layers["stereo"].shape == (20, 2, 3, H, W)
    assert out.layers["stereo"].dtype == torch.uint8
    assert out.indices.tolist() == list(range(20))
    assert torch.equal(out.frames, frames)
    assert torch.equal(out.layers["alpha"][:, 0, 0], torch.arange(20).float())  # carried along


def test_holds_at_most_the_lookahead_and_flushes_the_rest():
    frames, depth = clip()
    _, emitted = run(make(lookahead_frames=5), frames, depth, [3, 4, 6, 7])
    assert emitted == [0, 2, 6, 7]  # frame t leaves once frame t+5 has arrived
    _, emitted = run(make(lookahead_frames=0), frames, depth, [3, 4])
    assert emitted == [3, 4]


def test_output_does_not_depend_on_batch_sizes():
    frames, depth = clip()
    a, _ = run(make(lookahead_frames=4), frames, depth, [20])
    b, _ = run(make(lookahead_frames=4), frames, depth, [1, 2, 3, 5, 9])
    assert torch.equal(a.layers["stereo"], b.layers["stereo"])


def test_metric_depth_equals_relative_inverse_depth():
    frames, depth = clip()
    z = 1.0 / (depth + 0.5)
    rel, _ = run(make(), frames, depth + 0.5, [10, 10])
    met_stage = StereoStage(StereoSpec(), depth_kind="metric")
    met_stage.setup("cpu")
    met, _ = run(met_stage, frames, z, [10, 10])
    diff = (rel.layers["stereo"].int() - met.layers["stereo"].int()).abs()
    assert diff.float().mean() < 0.05  # equal up to float rounding of 1/(1/x)


def test_views_differ_and_zero_divergence_limit_is_the_frame():
    frames, depth = clip()
    out, _ = run(make(divergence=5.0), frames, depth, [20])
    left, right = out.layers["stereo"][:, 0], out.layers["stereo"][:, 1]
    assert not torch.equal(left, right)
    flat, _ = run(make(divergence=0.001, edge_dilation=0), frames, depth, [20])
    assert torch.equal(flat.layers["stereo"][:, 0], frames)


def test_errors_are_named():
    frames, depth = clip(4)
    stage = make()
    state = stage.init_state(INFO)
    idx = torch.arange(4)
    with pytest.raises(StageError, match="needs layer 'depth'"):
        stage.process(FrameBatch(frames, idx, idx / 30.0), state)
    before = state
    _, state = stage.process(FrameBatch(frames, idx, idx / 30.0, {"depth": depth}), state)
    assert before.last_index is None and before.ranges.pending == 0  # the input state is untouched
    with pytest.raises(StageError, match="out of order"):
        stage.process(FrameBatch(frames, idx, idx / 30.0, {"depth": depth}), state)
    small = frames[..., :16]
    with pytest.raises(StageError, match="frame size changed"):
        stage.process(FrameBatch(small, idx + 4, idx / 30.0, {"depth": depth[..., :16]}), state)
    with pytest.raises(SpecError, match="precision"):
        StereoStage(StereoSpec(), precision="fp64")
    with pytest.raises(SpecError, match="depth_kind"):
        StereoStage(StereoSpec(), depth_kind="absolute")


def test_depth_at_another_size_is_resized():
    frames, depth = clip(4)
    small = depth[:, ::2, ::2]
    out, _ = run(make(), frames, small, [4])
    assert out.layers["stereo"].shape == (4, 2, 3, H, W)


def range_change(ranges: torch.Tensor) -> float:
    """Mean frame-to-frame change of (low, high), relative to the mean span."""
    span = (ranges[:, 1] - ranges[:, 0]).mean()
    return float((ranges[1:] - ranges[:-1]).abs().sum(1).mean() / span)


def test_range_is_steadier_than_per_frame_minmax_on_a_static_camera_clip():
    """sam2 bedroom clip (static camera, children jumping), synthetic-weight VDA-S depth."""
    source = VideoSource(MEDIA / "sam2__bedroom.mp4")
    depth_stage = synthetic_depth_stage()
    state = depth_stage.init_state(source.info)
    depths = []
    for batch in source.batches(batch_frames=16, stop_frame=32):
        small = FrameBatch(torch.nn.functional.interpolate(batch.frames.float(), size=(135, 240),
                                                           mode="area").round().to(torch.uint8),
                           batch.indices, batch.pts_seconds)
        out, state = depth_stage.process(small, state)
        depths.append(out.layers["depth"])
    tail = depth_stage.flush(state)
    if tail is not None:
        depths.append(tail.layers["depth"])
    disparity = torch.cat(depths)
    assert len(disparity) == 32
    ours = StreamingRange(lookahead_frames=StereoSpec().lookahead_frames)
    stats = frame_percentiles(disparity, LOW_PCT, HIGH_PCT)
    streamed = torch.cat([ours.push(stats[i:i + 16]) for i in range(0, 32, 16)] + [ours.finish()])
    ratio = range_change(streamed) / range_change(minmax_ranges(disparity))
    print(f"bedroom: range change per frame, streaming {range_change(streamed):.4f} vs per-frame "
          f"min/max {range_change(minmax_ranges(disparity)):.4f} (ratio {ratio:.3f})")
    assert ratio < 0.5


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_colour_matches_fp32(precision):
    frames, depth = clip()
    ref, _ = run(make(), frames, depth, [20])
    stage = StereoStage(StereoSpec(), precision=precision)
    stage.setup("cpu")
    assert stage.colour_dtype == {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    low, _ = run(stage, frames, depth, [20])
    diff = (low.layers["stereo"].int() - ref.layers["stereo"].int()).abs()
    assert diff.max() <= 2 and diff.float().mean() < 0.3
