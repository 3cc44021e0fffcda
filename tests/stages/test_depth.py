"""DepthStage: the streaming state machine equals the official procedures, bounded memory,
fp32 fallback, weights loading errors."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from tests.models.vda_fixtures import TOL, clip_frames, golden, golden_state_dict, rel_err
from vdp.errors import SpecError, WeightsError
from vdp.models.video_depth_anything.align import apply_scale_shift, crossfade, fit_scale_shift
from vdp.models.video_depth_anything.configs import WINDOWING
from vdp.models.video_depth_anything.transform import FrameTransform, resize_depth
from vdp.spec import DepthSpec
from vdp.stages.depth import SYNTHETIC_WARNING, DepthStage, DepthState
from vdp.types import FrameBatch


def _stage(model: str = "vits", precision: str = "fp32", **spec) -> DepthStage:
    stage = DepthStage(DepthSpec(model=model, synthetic_weights=True, **spec), precision=precision)
    stage.setup("cpu")
    return stage


def _run(stage: DepthStage, frames: torch.Tensor, batch: int, *, first_index: int = 0,
         watch=None) -> FrameBatch:
    """Feed `frames` in batches (with an extra layer to carry through); return everything emitted."""
    state = stage.init_state(None)
    outs = []
    for i in range(0, len(frames), batch):
        idx = torch.arange(first_index + i, first_index + min(len(frames), i + batch))
        b = FrameBatch(frames[i:i + batch], idx, idx.double() / 30,
                       {"extra": idx.float()})
        out, state = stage.process(b, state)
        outs.append(out.with_layers(extra=out.layers.get("extra", torch.empty(0))))
        if watch:
            watch(state)
    last = stage.flush(state)
    if last is not None:
        outs.append(last)
    out = FrameBatch.concat(outs)
    assert torch.equal(out.frames, frames)  # RGB carried through, in order, each frame once
    assert torch.equal(out.indices, torch.arange(first_index, first_index + len(frames)))
    assert torch.equal(out.layers["extra"], out.indices.float())
    return out


@pytest.fixture(scope="module")
def vits_stage() -> DepthStage:
    return _stage(input_size=98)


def test_synthetic_weights_are_the_golden_weights(vits_stage: DepthStage) -> None:
    ref = golden_state_dict("vits", override=True)
    ours = vits_stage.model.state_dict()
    assert all(torch.equal(ours[k], ref[k]) for k in ref)
    assert vits_stage.report.warnings == [SYNTHETIC_WARNING]


@pytest.mark.parametrize("batch", [1, 7, 32])
def test_offline_stream_of_batches_equals_golden(vits_stage: DepthStage, batch: int) -> None:
    out = _run(vits_stage, clip_frames(), batch)
    depth = out.layers["depth"]
    assert depth.dtype == torch.float32 and tuple(depth.shape) == (80, 48, 72)
    assert rel_err(depth, golden("vits_video")["depth"]) <= TOL


def test_stream_mode_equals_stream_golden() -> None:
    stage = _stage(input_size=98, mode="stream")
    out = _run(stage, clip_frames(), 9)
    assert rel_err(out.layers["depth"], golden("vits_stream")["depth"]) <= TOL


# -- windowing edge cases against a literal port of the official loop -------------------------

def _reference_offline(model, frames: torch.Tensor, input_size: int, metric: bool) -> torch.Tensor:
    """The official ``infer_video_depth`` loop, whole clip in memory (test reference)."""
    w = WINDOWING
    n, _, h, wd = frames.shape
    t = FrameTransform.create(h, wd, input_size=input_size)
    pad = (w.stride - n % w.stride) % w.stride + (w.infer_len - w.stride)
    frame_list = list(frames) + [frames[-1]] * pad
    raw, previous = [], None
    for start in range(0, n, w.stride):
        cur = t(torch.stack(frame_list[start:start + w.infer_len])).unsqueeze(0)
        if previous is not None:
            cur[:, :w.overlap] = previous[:, list(w.keyframes)]
        with torch.no_grad():
            raw += list(resize_depth(model(cur)[0], (h, wd)))
        previous = cur
    aligned, ref = [], []
    for start in range(0, len(raw), w.infer_len):
        if not aligned:
            aligned += raw[:w.infer_len]
            ref = [raw[0], raw[12]]
            continue
        s, sh = (1.0, 0.0) if metric else fit_scale_shift(torch.stack(raw[start:start + 2]), torch.stack(ref))
        post = apply_scale_shift(torch.stack(raw[start + 2:start + 10]), s, sh)
        aligned[-8:] = list(crossfade(torch.stack(aligned[-8:]), post))
        aligned += list(apply_scale_shift(torch.stack(raw[start + 10:start + 32]), s, sh))
        ref = [ref[0], apply_scale_shift(raw[start + 12], s, sh)]
    return torch.stack(aligned[:n])


@pytest.fixture(scope="module")
def tiny_clip() -> torch.Tensor:
    """24x36 frames (network 28x42): the golden clip half-size, played forward and back (200 frames)."""
    small = clip_frames()[:, :, ::2, ::2].contiguous()
    return torch.cat([small, small.flip(0), small])[:200]


@pytest.mark.parametrize(("n", "model"), [(5, "vits"), (24, "vits"), (25, "vits"), (47, "vits"),
                                          (54, "vits"), (47, "metric_vits")])
def test_clip_ends_equal_the_official_loop(tiny_clip: torch.Tensor, n: int, model: str) -> None:
    stage = _stage(model, input_size=28)
    out = _run(stage, tiny_clip[:n], 5)
    ref = _reference_offline(stage.model, tiny_clip[:n], 28, metric=model.startswith("metric"))
    assert rel_err(out.layers["depth"], ref.numpy()) <= TOL


def _state_nbytes(obj) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.untyped_storage().nbytes()
    if isinstance(obj, FrameBatch):
        return sum(_state_nbytes(t) for t in (obj.frames, obj.indices, obj.pts_seconds, *obj.layers.values()))
    if isinstance(obj, (list, tuple)):
        return sum(_state_nbytes(o) for o in obj)
    if dataclasses.is_dataclass(obj):
        return sum(_state_nbytes(getattr(obj, f.name)) for f in dataclasses.fields(obj))
    return 0


def test_memory_is_bounded_by_one_window(tiny_clip: torch.Tensor) -> None:
    stage = _stage(input_size=28)
    held, sizes = [], []

    def watch(state: DepthState) -> None:
        held.append((state.buffered_frames, state.procedure.filled))
        if state.procedure.next_window >= 2:  # window buffer, blend tail, reference, keyframe inputs
            sizes.append(_state_nbytes(state.procedure))

    out = _run(stage, tiny_clip, 7, watch=watch)  # 200 = 9 * 22 + 2: the official 10th window is moot
    assert max(rgb for rgb, _ in held) <= WINDOWING.infer_len  # frames waiting for depth
    assert max(win for _, win in held) <= WINDOWING.infer_len  # the window buffer
    assert len(sizes) > 20 and len(set(sizes)) == 1  # the procedure's state does not grow
    ref = _reference_offline(stage.model, tiny_clip, 28, metric=False)
    assert rel_err(out.layers["depth"], ref.numpy()) <= TOL


def test_max_res_downscales_for_the_network_only() -> None:
    stage = _stage(input_size=98, max_res=64)
    shapes = []
    hook = stage.model.register_forward_pre_hook(lambda m, args: shapes.append(tuple(args[0].shape)))
    out = _run(stage, clip_frames()[:6], 6)
    hook.remove()
    assert shapes == [(1, 32, 3, 98, 154)]  # from 42x64, not from 48x72 (98x140)
    assert tuple(out.layers["depth"].shape) == (6, 48, 72)


# -- precision ---------------------------------------------------------------------------------

def _inject_nan_below_fp32(stage: DepthStage):
    def hook(module, args, output):
        if output.dtype != torch.float32:
            return output * float("nan")
        return None
    return stage.model.head.scratch.output_conv1.register_forward_hook(hook)


def test_non_finite_window_is_rerun_in_fp32_and_reported() -> None:
    frames = clip_frames()[:10, :, ::2, ::2].contiguous()
    stage = _stage(input_size=28, precision="bf16")
    plain = _run(stage, frames, 4, first_index=100)
    assert stage.take_report().fallbacks == []
    hook = _inject_nan_below_fp32(stage)
    try:
        out = _run(stage, frames, 4, first_index=100)
    finally:
        hook.remove()
    assert stage.take_report().fallbacks == [{"stage": "depth", "window": 0, "first_frame": 100,
                                              "last_frame": 109, "from": "bf16", "to": "fp32",
                                              "reason": "non-finite output in bf16"}]
    reference = _run(_stage(input_size=28, precision="fp32"), frames, 4)
    assert torch.isfinite(out.layers["depth"]).all()
    assert torch.allclose(out.layers["depth"], reference.layers["depth"], rtol=0, atol=1e-6)
    assert not torch.allclose(plain.layers["depth"], reference.layers["depth"], rtol=0, atol=1e-6)


def test_non_finite_stream_step_is_rerun_in_fp32() -> None:
    stage = _stage(input_size=28, precision="bf16", mode="stream")
    hook = _inject_nan_below_fp32(stage)
    try:
        out = _run(stage, clip_frames()[:3, :, ::2, ::2].contiguous(), 2)
    finally:
        hook.remove()
    assert [f["window"] for f in stage.report.fallbacks] == [0, 1, 2]
    assert torch.isfinite(out.layers["depth"]).all()


def test_precision_is_validated() -> None:
    with pytest.raises(SpecError, match="precision must be one of auto, fp16, bf16, fp32"):
        DepthStage(DepthSpec(), precision="fp8")


# -- weights -------------------------------------------------------------------------------------

def test_missing_checkpoint_raises_with_fetch_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VDP_MODEL_DIR", str(tmp_path))
    stage = DepthStage(DepthSpec(model="vitl"))
    with pytest.raises(WeightsError, match=r"not found at .*video_depth_anything_vitl\.pth.*vdp models fetch vitl"):
        stage.setup("cpu")


def test_checkpoint_file_is_loaded_strictly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VDP_MODEL_DIR", str(tmp_path))
    sd = golden_state_dict("vits", override=False)
    torch.save(sd, tmp_path / "video_depth_anything_vits.pth")
    stage = DepthStage(DepthSpec(model="vits"))
    stage.setup("cpu")
    assert stage.report.warnings == []
    assert torch.equal(stage.model.state_dict()["head.scratch.output_conv2.2.weight"],
                       sd["head.scratch.output_conv2.2.weight"])
    bad = {k: v for k, v in sd.items() if k != "pretrained.cls_token"} | {"pretrained.register_tokens": torch.zeros(1)}
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match=r"missing keys \(1\): pretrained\.cls_token; "
                                           r"unexpected keys \(1\): pretrained\.register_tokens"):
        DepthStage(DepthSpec(model="vits", checkpoint=str(tmp_path / "bad.pth"))).setup("cpu")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read checkpoint"):
        DepthStage(DepthSpec(model="vits", checkpoint=str(tmp_path / "junk.pth"))).setup("cpu")
