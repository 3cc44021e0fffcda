"""RefineStage with the shipped checkpoint: streaming invariance, metric scale, kinds, errors."""
from __future__ import annotations

import pytest
import torch

from vdp.errors import SpecError, StageError, WeightsError
from vdp.refiner.synthetic import render_clip
from vdp.refiner.teacher import simulate_teacher
from vdp.spec import RefineSpec
from vdp.stages.refine import RefineStage
from vdp.types import FrameBatch, VideoInfo

T, H, W = 30, 40, 56


@pytest.fixture(scope="module")
def clip():
    scene = render_clip(11, frames=T, height=H, width=W)
    return scene.rgb, simulate_teacher(scene.depth, 12)


@pytest.fixture(scope="module")
def stage():
    s = RefineStage(RefineSpec(), precision="fp32", depth_kind="metric")
    s.setup("cpu")
    return s


def _info() -> VideoInfo:
    return VideoInfo(path="x.mp4", num_frames=T, fps=30.0, duration_seconds=1.0, width=W,
                     height=H, codec="h264")


def _batches(rgb, depth, size, extra=None):
    for i in range(0, rgb.shape[0], size):
        layers = {"depth": depth[i:i + size]}
        if extra is not None:
            layers["alpha"] = extra[i:i + size]
        yield FrameBatch(rgb[i:i + size], torch.arange(i, min(i + size, rgb.shape[0])),
                         torch.arange(i, min(i + size, rgb.shape[0])).double() / 30, layers)


def _run(stage, rgb, depth, size, extra=None) -> FrameBatch:
    state = stage.init_state(_info())
    outs = []
    for b in _batches(rgb, depth, size, extra):
        out, state = stage.process(b, state)
        outs.append(out)
    tail = stage.flush(state)
    if tail is not None:
        outs.append(tail)
    return FrameBatch.concat(outs)


def test_output_identical_for_1_5_12_frame_batches(stage, clip):
    rgb, teacher = clip
    alpha = torch.rand(T, H, W)
    outs = [_run(stage, rgb, teacher, n, alpha) for n in (1, 5, 12)]
    for o in outs:
        assert torch.equal(o.indices, torch.arange(T))
        assert torch.equal(o.frames, rgb)
        assert torch.equal(o.layers["alpha"], alpha)      # other layers pass through untouched
        assert o.layers["depth"].dtype == torch.float32
    torch.testing.assert_close(outs[1].layers["depth"], outs[0].layers["depth"], rtol=0, atol=1e-6)
    torch.testing.assert_close(outs[2].layers["depth"], outs[0].layers["depth"], rtol=0, atol=1e-6)
    assert not torch.equal(outs[0].layers["depth"], teacher)       # it did refine


def test_metric_median_kept_and_bound_respected(stage, clip):
    rgb, teacher = clip
    out = _run(stage, rgb, teacher, 7).layers["depth"]
    assert abs(float(out.median()) / float(teacher.median()) - 1) < 0.005
    cfg = stage.model.config
    assert bool(((out - teacher).abs() <= cfg.alpha * teacher + cfg.beta + 1e-5).all())


def test_relative_disparity_median_kept(clip):
    rgb, teacher = clip
    disparity = 3.0 / teacher + 0.05                   # relative VDA: larger = nearer, affine
    s = RefineStage(RefineSpec(), precision="auto", depth_kind="relative")
    s.setup("cpu")
    out = _run(s, rgb, disparity, 9).layers["depth"]
    assert bool((out >= 0).all())
    assert abs(float(out.median()) / float(disparity.median()) - 1) < 0.005
    assert float((out - disparity).abs().mean() / disparity.mean()) < 0.05


def test_invalid_metric_pixels_pass_through(stage, clip):
    rgb, teacher = clip
    bad = teacher.clone()
    bad[:, :3, :3] = 0.0
    bad[5, 10, 10] = float("nan")
    out = _run(stage, rgb, bad, 30).layers["depth"]
    assert bool((out[:, :3, :3] == 0).all()) and torch.isnan(out[5, 10, 10])
    rest = torch.ones_like(out, dtype=torch.bool)
    rest[:, :3, :3] = False
    rest[5, 10, 10] = False
    assert bool(torch.isfinite(out[rest]).all()) and bool((out[rest] > 0).all())


def test_short_stream_and_empty_batch(stage, clip):
    rgb, teacher = clip
    out = _run(stage, rgb[:3], teacher[:3], 2)
    assert len(out) == 3
    state = stage.init_state(_info())
    empty = FrameBatch.empty(H, W).with_layers(depth=torch.empty(0, H, W))
    out, state = stage.process(empty, state)
    assert len(out) == 0 and stage.flush(state) is None


def test_errors(clip):
    rgb, teacher = clip
    with pytest.raises(SpecError, match="depth_kind must be one of relative, metric"):
        RefineStage(RefineSpec(), depth_kind="auto")
    with pytest.raises(SpecError, match="precision must be one of"):
        RefineStage(RefineSpec(), precision="int8")
    s = RefineStage(RefineSpec())
    batch = FrameBatch(rgb[:2], torch.arange(2), torch.zeros(2, dtype=torch.float64),
                       {"depth": teacher[:2]})
    with pytest.raises(StageError, match="setup"):
        s.process(batch, s.init_state(_info()))
    s.setup("cpu")
    with pytest.raises(StageError, match="needs a 'depth' layer"):
        s.process(FrameBatch(rgb[:2], torch.arange(2), torch.zeros(2, dtype=torch.float64)),
                  s.init_state(_info()))
    with pytest.raises(StageError, match=r"depth layer must be \[T,40,56\]"):
        s.process(batch.with_layers(depth=teacher[:2, :10]), s.init_state(_info()))
    with pytest.raises(WeightsError, match="not found"):
        RefineStage(RefineSpec(checkpoint="/nonexistent/r.pt")).setup("cpu")


def test_non_finite_reduced_precision_window_is_rerun_in_fp32(clip, monkeypatch):
    rgb, teacher = clip
    monkeypatch.setattr(RefineStage, "_autocast_dtype", lambda self: torch.bfloat16)
    s = RefineStage(RefineSpec(), precision="bf16")
    s.setup("cpu")
    forward = type(s.model).forward

    def flaky(model, *args, **kwargs):                  # NaN whenever autocast is on
        out = forward(model, *args, **kwargs)
        if torch.is_autocast_enabled("cpu"):
            out.rho = out.rho * float("nan")
        return out

    monkeypatch.setattr(type(s.model), "forward", flaky)
    out = _run(s, rgb, teacher, 12).layers["depth"]
    assert bool(torch.isfinite(out).all())
    report = s.take_report()
    assert [f["first_frame"] for f in report.fallbacks] == list(range(0, T, s.model.config.stride_frames))  # every window
    assert report.fallbacks[0]["to"] == "fp32"


def test_blend_and_confidence_choice_from_the_spec(stage, clip):
    rgb, teacher = clip
    full = _run(stage, rgb, teacher, 8).layers["depth"]
    zero = RefineStage(RefineSpec(blend=0.0), precision="fp32")
    zero.setup("cpu")
    torch.testing.assert_close(_run(zero, rgb, teacher, 8).layers["depth"], teacher, rtol=0, atol=1e-6)
    half = RefineStage(RefineSpec(blend=0.5), precision="fp32")
    half.setup("cpu")
    out = _run(half, rgb, teacher, 8).layers["depth"]
    # half the log correction: log(out) is the mean of log(teacher) and log(full)
    torch.testing.assert_close(out.log(), (teacher.log() + full.log()) / 2, rtol=0, atol=1e-4)
    plain = RefineStage(RefineSpec(use_confidence=False), precision="fp32")
    plain.setup("cpu")
    no_conf = _run(plain, rgb, teacher, 8).layers["depth"]
    assert not torch.allclose(no_conf, full, rtol=0, atol=1e-6)


def test_spec_validates_blend():
    with pytest.raises(ValueError, match="blend"):
        RefineSpec(blend=1.5)
    assert RefineSpec().use_confidence and RefineSpec().blend == 1.0
    assert RefineSpec().max_frame_shift is None
    for bad in (-0.001, 0.5):
        with pytest.raises(ValueError, match="max_frame_shift"):
            RefineSpec(max_frame_shift=bad)


def test_frame_shift_limit_from_the_spec(stage, clip):
    rgb, teacher = clip
    full = _run(stage, rgb, teacher, 8).layers["depth"]
    limited = RefineStage(RefineSpec(max_frame_shift=0.002), precision="fp32")
    limited.setup("cpu")
    outs = [_run(limited, rgb, teacher, n).layers["depth"] for n in (1, 7)]
    torch.testing.assert_close(outs[1], outs[0], rtol=0, atol=1e-6)
    shift = torch.log(outs[0] / teacher).flatten(1).median(1).values
    free = torch.log(full / teacher).flatten(1).median(1).values
    assert float(free.abs().max()) > 0.002                 # unlimited, some frame moved further
    assert float(shift.abs().max()) <= 0.002 + 1e-5
    assert not torch.allclose(outs[0], teacher, rtol=0, atol=1e-6)   # it still refines
    job_key = RefineStage.config_key(RefineSpec(max_frame_shift=0.002), _job())
    assert job_key != RefineStage.config_key(RefineSpec(), _job())


def test_windows_from_the_spec(stage, clip):
    """``windows`` runs the checkpoint on other windows: the training ones ([12, 6]) give
    another output, each the same for any batching; windows the context cannot fit are refused."""
    rgb, teacher = clip
    assert (stage.model.config.window_frames, stage.model.config.overlap_frames) == (32, 8)
    full = _run(stage, rgb, teacher, 8).layers["depth"]
    short = RefineStage(RefineSpec(windows=(12, 6)), precision="fp32")
    short.setup("cpu")
    assert (short.model.config.window_frames, short.model.config.keyframes) == (12, (0, 4, 8))
    outs = [_run(short, rgb, teacher, n).layers["depth"] for n in (1, 8)]
    torch.testing.assert_close(outs[1], outs[0], rtol=0, atol=1e-6)
    assert not torch.allclose(outs[0], full, rtol=0, atol=1e-5)
    assert RefineStage.config_key(RefineSpec(windows=(12, 6)), _job()) != RefineStage.config_key(RefineSpec(), _job())
    with pytest.raises(ValueError, match="overlap"):
        RefineSpec(windows=(12, 12))
    tight = RefineStage(RefineSpec(windows=(8, 2)), precision="fp32")  # v1's context reaches 12 frames back
    with pytest.raises(SpecError, match="refine.windows"):
        tight.setup("cpu")


def _job():
    from vdp.spec import JobSpec

    return JobSpec.from_preset("metric-depth+refine", input="clip.mp4")


def test_metric_depth_refine_preset():
    from vdp.spec import JobSpec

    job = JobSpec.from_preset("metric-depth+refine", input="clip.mp4")
    assert job.depth_kind == "metric"
    assert job.stages.refine == RefineSpec(use_confidence=True, blend=1.0)
    key = RefineStage.config_key(job.stages.refine, job)
    other = RefineStage.config_key(RefineSpec(use_confidence=False, blend=0.5), job)
    assert key != other and key[0] == "metric"


def test_an_rgb_refiner_reads_the_batches_frames(tmp_path, clip):
    from vdp.models.refiner import PRESETS, Refiner, save_refiner
    from vdp.refiner.inference import refine_depth

    torch.manual_seed(0)
    model = Refiner(PRESETS["v1"]).eval()
    with torch.no_grad():
        model.decoder.conv2.weight.normal_(0.0, 0.05)       # a residual that is not ~zero
    save_refiner(model, tmp_path / "rgb.pt")
    stage = RefineStage(RefineSpec(checkpoint=str(tmp_path / "rgb.pt")), precision="fp32")
    stage.setup("cpu")
    rgb, teacher = clip
    outs = [_run(stage, rgb, teacher, n).layers["depth"] for n in (4, 11)]
    torch.testing.assert_close(outs[1], outs[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(outs[0], refine_depth(model, teacher, rgb=rgb), rtol=0, atol=1e-6)
    other = _run(stage, rgb.flip(0), teacher, 4).layers["depth"]
    assert float((other - outs[0]).abs().max()) > 1e-4      # other pictures, other refinement
