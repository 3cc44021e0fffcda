"""MatteStage: batching independence, carried state, ratio rule, fp32 fallback, weights errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import needs_cuda
from tests.resources.synthetic_weights import load_manifest, synthetic_state_dict
from vdp import catalog
from vdp.errors import SpecError, StageError, WeightsError
from vdp.models.rvm import MattingNetwork, auto_downsample_ratio
from vdp.spec import MatteSpec
from vdp.stages.matte import SYNTHETIC_WARNING, MatteStage
from vdp.types import FrameBatch, VideoInfo

RVM = Path(__file__).parent.parent / "resources" / "parity" / "rvm"
FPC = 3  # frames per call: the 7-frame clip runs as calls of 3, 3 and (at flush) 1
RATIO = 0.5


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    """The 7-frame 90x160 RGB clip of the RVM parity fixture, uint8 [7,3,90,160]."""
    with np.load(RVM / "golden_mobilenetv3.npz", allow_pickle=False) as z:
        return torch.from_numpy(z["src_u8"])


def _info(frames: torch.Tensor) -> VideoInfo:
    return VideoInfo(path="clip.mp4", num_frames=len(frames), fps=30.0, duration_seconds=len(frames) / 30,
                     width=frames.shape[3], height=frames.shape[2], codec="h264")


def _batches(frames: torch.Tensor, size: int, first_index: int = 0) -> list[FrameBatch]:
    out = []
    for start in range(0, len(frames), size):
        part = frames[start:start + size]
        idx = torch.arange(first_index + start, first_index + start + len(part))
        out.append(FrameBatch(part, idx, idx.double() / 30))
    return out


def _stage(precision: str = "fp32", **spec) -> MatteStage:
    spec = {"synthetic_weights": True, "frames_per_call": FPC, "downsample_ratio": RATIO, **spec}
    stage = MatteStage(MatteSpec(**spec), precision=precision)
    stage.setup("cpu")
    return stage


def _run(stage: MatteStage, frames: torch.Tensor, batch_size: int) -> tuple[FrameBatch, dict]:
    state = stage.init_state(_info(frames))
    outs = []
    for b in _batches(frames, batch_size):
        out, state = stage.process(b, state)
        outs.append(out)
    tail = stage.flush(state)
    if tail is not None:
        outs.append(tail)
    return FrameBatch.concat(outs), state


@pytest.fixture(scope="module")
def stage() -> MatteStage:
    return _stage()


@pytest.fixture(scope="module")
def reference(stage, clip) -> FrameBatch:
    """All frames handed to the stage in one batch."""
    return _run(stage, clip, len(clip))[0]


def test_layers_shapes_and_range(reference, clip):
    assert torch.equal(reference.frames, clip)
    assert torch.equal(reference.indices, torch.arange(7))
    alpha, fgr = reference.layers["alpha"], reference.layers["foreground"]
    assert alpha.dtype == fgr.dtype == torch.uint8
    assert tuple(alpha.shape) == (7, 90, 160) and tuple(fgr.shape) == (7, 3, 90, 160)
    assert set(catalog.stage("matte").produces) == set(reference.layers)


@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_output_does_not_depend_on_batching(stage, clip, reference, batch_size):
    out, _ = _run(stage, clip, batch_size)
    assert torch.equal(out.indices, reference.indices)
    assert torch.equal(out.layers["alpha"], reference.layers["alpha"])
    assert torch.equal(out.layers["foreground"], reference.layers["foreground"])


def test_state_is_carried_like_a_direct_model_chain(stage, clip, reference):
    model = MattingNetwork("mobilenetv3").eval()
    model.load_state_dict(synthetic_state_dict(load_manifest(RVM / "manifest_mobilenetv3.json")))
    src = clip.float() / 255
    rec, alpha, fgr = [None] * 4, [], []
    with torch.no_grad():
        for start in range(0, len(clip), FPC):
            f, p, *rec = model(src[start:start + FPC][None], *rec, downsample_ratio=RATIO)
            fgr.append(f[0])
            alpha.append(p[0, :, 0])
    assert torch.equal(reference.layers["alpha"], (torch.cat(alpha) * 255 + 0.5).to(torch.uint8))
    direct_fgr = torch.cat(fgr)
    assert torch.equal(reference.layers["foreground"], (direct_fgr * 255 + 0.5).to(torch.uint8))
    _, state = _run(stage, clip, 2)
    for ours, direct in zip(state["rec"], rec):
        torch.testing.assert_close(ours, direct, rtol=0, atol=1e-6)
    # a fresh state for the last call would give a different matte: the carry matters
    with torch.no_grad():
        fresh = model(src[6:][None], downsample_ratio=RATIO)[0][0]
    assert (fresh - direct_fgr[6:]).abs().max() > 1e-3


def test_buffers_until_a_full_call_and_keeps_earlier_layers(stage, clip):
    state = stage.init_state(_info(clip))
    depth = torch.rand(7, 90, 160)
    outs = []
    for b in _batches(clip, 2):
        b = b.with_layers(depth=depth[b.indices])
        out, state = stage.process(b, state)
        assert len(out) in (0, FPC)
        assert set(out.layers) == {"depth", "alpha", "foreground"}
        outs.append(out)
    assert [len(o) for o in outs] == [0, 3, 3, 0]  # batches 2,2,2,1 -> calls of 3
    assert len(state["buffer"]) == 1
    outs.append(stage.flush(state))
    assert stage.flush(state) is None
    joined = FrameBatch.concat(outs)
    assert torch.equal(joined.layers["depth"], depth)


def test_frames_out_of_order_raise(stage, clip):
    state = stage.init_state(_info(clip))
    b0, b1, *_ = _batches(clip, 3)
    _, state = stage.process(b1, state)
    with pytest.raises(StageError, match="frames out of order: got frame 0 after frame 5"):
        stage.process(b0, state)


def test_frame_size_change_raises(stage, clip):
    state = stage.init_state(_info(clip))
    _, state = stage.process(_batches(clip, 3)[0], state)
    small = _batches(clip[:, :, :64, :64].contiguous(), 3, first_index=3)[0]
    with pytest.raises(StageError, match="frame size changed mid-stream from 160x90 to 64x64"):
        stage.process(small, state)


def _ratios_seen(stage: MatteStage) -> list[float]:
    seen: list[float] = []
    stage.model.register_forward_pre_hook(
        lambda _m, _a, kwargs: seen.append(kwargs["downsample_ratio"]), with_kwargs=True)
    return seen


@pytest.mark.parametrize(("spec_ratio", "expected"), [(None, 512 / 1030), (0.25, 0.25)])
def test_downsample_ratio_auto_rule_or_spec(spec_ratio, expected):
    stage = _stage(downsample_ratio=spec_ratio, frames_per_call=2)
    seen = _ratios_seen(stage)
    frames = torch.randint(0, 256, (3, 3, 40, 1030), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out, _ = _run(stage, frames, 3)
    assert seen == [expected, expected]  # one full call and the flushed remainder
    assert tuple(out.layers["alpha"].shape) == (3, 40, 1030)
    if spec_ratio is None:
        assert expected == auto_downsample_ratio(40, 1030)


def test_small_frames_run_at_full_resolution(clip):
    stage = _stage(downsample_ratio=None)
    seen = _ratios_seen(stage)
    _run(stage, clip[:3], 3)
    assert seen == [1.0]  # 160 px wide: the auto rule never upsamples, the refiner is off


def _nan_hook(calls_to_poison: set[int]):
    """A forward hook on `project_mat` that puts NaN into reduced-precision outputs."""
    counter = {"call": -1}

    def hook(_module, _inputs, output):
        if output.dtype == torch.float32:
            return None
        counter["call"] += 1
        if counter["call"] in calls_to_poison:
            output = output.clone()
            output[..., 0, 0] = float("nan")
            return output
        return None

    return hook


def test_non_finite_autocast_output_falls_back_to_fp32(clip, reference):
    stage = _stage(precision="bf16")
    stage.model.project_mat.register_forward_hook(_nan_hook({0, 1, 2}))
    out, _ = _run(stage, clip, 2)
    # every call fell back, so the result is the fp32 result, bit for bit
    assert torch.equal(out.layers["alpha"], reference.layers["alpha"])
    assert torch.equal(out.layers["foreground"], reference.layers["foreground"])
    report = stage.take_report()
    assert [(f["first_frame"], f["last_frame"]) for f in report.fallbacks] == [(0, 2), (3, 5), (6, 6)]
    assert all(f["from"] == "bf16" and f["to"] == "fp32" for f in report.fallbacks)


def test_only_the_poisoned_call_falls_back(clip, reference):
    stage = _stage(precision="bf16")
    stage.model.project_mat.register_forward_hook(_nan_hook({1}))
    out, _ = _run(stage, clip, 7)
    fallbacks = stage.take_report().fallbacks
    assert [(f["first_frame"], f["last_frame"]) for f in fallbacks] == [(3, 5)]
    # calls 0 and 2 ran in bf16: close to fp32 but not identical
    diff = (out.layers["foreground"].int() - reference.layers["foreground"].int()).abs()
    assert 0 < diff[:3].max() < 0.1 * 255


def test_non_finite_in_fp32_raises(clip):
    stage = _stage(precision="fp32")
    stage.model.project_mat.register_forward_hook(
        lambda _m, _i, out: out.clone().fill_(float("nan")))
    state = stage.init_state(_info(clip))
    with pytest.raises(StageError, match="non-finite values in fp32 on frames 0-2"):
        stage.process(_batches(clip, 3)[0], state)


def test_synthetic_weights_are_reported(clip):
    stage = _stage()
    stage.init_state(_info(clip))
    stage.init_state(_info(clip))  # a second segment of the same job: reported once
    assert stage.take_report().warnings == [SYNTHETIC_WARNING]
    stage.init_state(_info(clip))  # the next job's report gets it again
    assert stage.take_report().warnings == [SYNTHETIC_WARNING]


def test_auto_precision_is_fp32_on_cpu():
    assert _stage(precision="auto").autocast_dtype is None


def test_unknown_precision_is_rejected():
    with pytest.raises(SpecError, match="precision must be one of auto, fp16, bf16, fp32, got 'int8'"):
        MatteStage(MatteSpec(synthetic_weights=True), precision="int8")


def test_missing_checkpoint_raises_weights_error(tmp_path, monkeypatch):
    monkeypatch.setenv("VDP_MODEL_DIR", str(tmp_path))
    with pytest.raises(WeightsError, match=r"checkpoint for 'rvm_mobilenetv3' not found .*rvm_mobilenetv3\.pth"):
        MatteStage(MatteSpec()).setup("cpu")
    with pytest.raises(WeightsError, match="checkpoint for 'rvm_resnet50' not found at .*nope.pth"):
        MatteStage(MatteSpec(variant="resnet50", checkpoint=str(tmp_path / "nope.pth"))).setup("cpu")


def test_mismatched_checkpoint_names_the_keys(tmp_path):
    sd = synthetic_state_dict(load_manifest(RVM / "manifest_mobilenetv3.json"))
    del sd["project_seg.conv.bias"]
    sd["extra.weight"] = torch.zeros(1)
    sd["project_mat.conv.bias"] = torch.zeros(5)
    path = tmp_path / "rvm.pth"
    torch.save(sd, path)
    with pytest.raises(WeightsError, match=r"missing keys \(1\): project_seg.conv.bias; "
                                           r"unexpected keys \(1\): extra.weight; "
                                           r"shape mismatches \(1\): project_mat.conv.bias: \[5\] vs expected \[4\]"):
        MatteStage(MatteSpec(checkpoint=str(path))).setup("cpu")


def test_corrupt_checkpoint_raises_weights_error(tmp_path):
    path = tmp_path / "rvm.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read checkpoint"):
        MatteStage(MatteSpec(checkpoint=str(path))).setup("cpu")


def test_official_layout_checkpoint_loads_for_both_refiners(tmp_path, clip, reference):
    """A checkpoint with the official (deep guided filter) keys; FGF drops ``refiner.*``."""
    sd = synthetic_state_dict(load_manifest(RVM / "manifest_mobilenetv3.json"))
    path = tmp_path / "rvm_mobilenetv3.pth"
    torch.save(sd, path)
    dgf = MatteStage(MatteSpec(checkpoint=str(path), frames_per_call=FPC, downsample_ratio=RATIO),
                     precision="fp32")
    dgf.setup("cpu")
    out, _ = _run(dgf, clip, 7)
    assert torch.equal(out.layers["foreground"], reference.layers["foreground"])
    fgf = MatteStage(MatteSpec(checkpoint=str(path), refiner="fast_guided_filter"))
    fgf.setup("cpu")
    assert not any(k.startswith("refiner.") for k in fgf.model.state_dict())
    assert dgf.take_report().warnings == []


@needs_cuda
def test_auto_precision_on_cuda_is_fp16_close_to_fp32(clip, reference):
    stage = MatteStage(MatteSpec(synthetic_weights=True, frames_per_call=FPC, downsample_ratio=RATIO))
    stage.setup("cuda")
    assert stage.autocast_dtype == torch.float16
    out, state = _run(stage, clip, 2)
    assert out.layers["alpha"].device.type == "cpu" and out.layers["alpha"].dtype == torch.uint8
    assert state["rec"][0].device.type == "cuda"
    assert (out.layers["foreground"].int() - reference.layers["foreground"].int()).abs().max() < 5e-2 * 255
    assert (out.layers["alpha"].int() - reference.layers["alpha"].int()).abs().max() < 5e-2 * 255
