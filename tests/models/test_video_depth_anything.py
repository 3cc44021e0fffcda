"""Parity of our Video Depth Anything with the official model (fixtures: tests/resources/parity/vda).

Covers the state-dict layout of every manifest, the direct forward (vits with intermediates,
vitl), the offline windowed procedure and the streaming procedure, each against goldens made by
the official code. Tolerance: max|diff| <= 1e-4 * peak (README of the fixtures).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.models.vda_fixtures import (OVERRIDE, TOL, TOL_FP16_STORED, clip_frames, golden,
                                       golden_state_dict, manifest_file, rel_err)
from tests.resources.synthetic_weights import synthetic_state_dict as shared_synthetic_state_dict
from vdp.errors import WeightsError
from vdp.models.state_dict import MANIFEST_DIR, load_strict
from vdp.models.synthetic import load_manifest, synthetic_state_dict
from vdp.models.video_depth_anything import VideoDepthAnything, model_config
from vdp.models.video_depth_anything.align import apply_scale_shift, crossfade, fit_scale_shift
from vdp.models.video_depth_anything.inference import (StreamDepth, default_step_runner,
                                                       infer_video_depth)
from vdp.models.video_depth_anything.loading import build_model, synthetic_weights
from vdp.models.video_depth_anything.motion_module import POSITION_FRAMES_PER_PASS
from vdp.models.video_depth_anything.transform import FrameTransform, network_size
from vdp.models.video_depth_anything.video_depth import FRAMES_PER_PASS

MANIFESTS = ("vits", "vitl", "metric_vits")


def _model(name: str, *, override: bool, metric: bool = False) -> VideoDepthAnything:
    model = VideoDepthAnything(**{**manifest_file(name)["constructor"], "metric": metric}).eval()
    model.load_state_dict(golden_state_dict(name, override=override), strict=True)
    return model


@pytest.fixture(scope="module")
def vits_pure() -> VideoDepthAnything:
    return _model("vits", override=False)


@pytest.fixture(scope="module")
def vits() -> VideoDepthAnything:
    return _model("vits", override=True)


# -- layout ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", MANIFESTS)
def test_state_dict_layout_equals_manifest(name: str) -> None:
    man = manifest_file(name)
    assert model_config(name) == man["constructor"]
    model = build_model(name)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == {k: v["shape"] for k, v in man["keys"].items()}
    assert list(ours) == list(man["keys"])  # same order as the official module tree
    # strict load (keys and shapes), with meta tensors so vitl costs nothing
    meta = {k: torch.empty(v["shape"], device="meta") for k, v in man["keys"].items()}
    model.load_state_dict(meta, strict=True, assign=True)


def test_shipped_manifests_equal_the_fixtures() -> None:
    for name in MANIFESTS:
        shipped = load_manifest(MANIFEST_DIR / "vda" / f"manifest_{name}.json")
        assert shipped == manifest_file(name)["keys"]


def test_vitb_constructs_with_official_widths() -> None:
    model = build_model("vitb")
    sd = model.state_dict()
    assert tuple(sd["pretrained.pos_embed"].shape) == (1, 1370, 768)
    assert [tuple(sd[f"head.projects.{i}.weight"].shape)[:2] for i in range(4)] == [
        (96, 768), (192, 768), (384, 768), (768, 768)]
    assert tuple(sd["head.scratch.layer1_rn.weight"].shape) == (128, 96, 3, 3)
    assert set(sd) == set(manifest_file("vits")["keys"])  # same keys as vits, other widths
    assert len(model.pretrained.blocks[0].attn.qkv.weight) == 3 * 768
    assert model.pretrained.blocks[0].attn.num_heads == 12


def test_optional_constructor_flags_build_and_run() -> None:
    model = VideoDepthAnything(**{**model_config("vits"), "use_bn": True, "use_clstoken": True}).eval()
    keys = model.state_dict().keys()
    assert "head.scratch.refinenet1.resConfUnit1.bn1.running_mean" in keys
    assert "head.readout_projects.3.0.weight" in keys
    with torch.no_grad():
        depth = model(torch.randn(1, 2, 3, 28, 42, generator=torch.Generator().manual_seed(0)))
    assert tuple(depth.shape) == (1, 2, 28, 42) and torch.isfinite(depth).all()
    with pytest.raises(ValueError, match="encoder must be one of"):
        VideoDepthAnything(encoder="vitg")


def test_temporal_tables_are_persistent_buffers() -> None:
    model = build_model("vits")
    pe_keys = [k for k in model.state_dict() if k.endswith("pos_encoder.pe")]
    assert len(pe_keys) == 8
    buffers = dict(model.named_buffers())
    assert all(k in buffers for k in pe_keys)


def test_strict_load_names_missing_and_unexpected_keys() -> None:
    model = build_model("vits")
    sd = {k: torch.empty(v.shape, device="meta") for k, v in model.state_dict().items()}
    del sd["head.scratch.output_conv1.bias"]
    sd["head.extra.weight"] = torch.empty(2, device="meta")
    sd["pretrained.norm.weight"] = torch.empty(3, device="meta")
    with pytest.raises(WeightsError, match=r"missing keys \(1\): head.scratch.output_conv1.bias.*"
                                           r"unexpected keys \(1\): head.extra.weight.*"
                                           r"pretrained.norm.weight: \[3\] vs expected \[384\]"):
        load_strict(model, sd, source="test weights")


def test_package_synthetic_rule_equals_shared_rule() -> None:
    man = manifest_file("vits")["keys"]
    ours, shared = synthetic_state_dict(man), shared_synthetic_state_dict(man)
    assert list(ours) == list(shared)
    assert all(torch.equal(ours[k], shared[k]) for k in ours)
    flipped = synthetic_weights("vits", build_model("vits"))
    assert all(torch.equal(flipped[k], -shared[k]) for k in OVERRIDE)


# -- (a) direct forward ------------------------------------------------------------------------

def test_direct_forward_vits(vits_pure: VideoDepthAnything, vits: VideoDepthAnything) -> None:
    g = golden("vits")
    x = torch.from_numpy(g["input"].astype(np.float32))
    captured: dict[str, list[torch.Tensor]] = {"pre": [], **{f"mm{k}": [] for k in range(4)}}
    hooks = [vits_pure.head.scratch.output_conv2[2].register_forward_hook(
        lambda m, i, o: captured["pre"].append(o.clone()))]
    for k in range(4):  # motion modules return (output [B,C,T,h,w], states)
        hooks.append(vits_pure.head.motion_modules[k].register_forward_hook(
            lambda m, i, o, k=k: captured[f"mm{k}"].append(o[0][:, :, [0, -1]].clone())))
    try:
        with torch.no_grad():
            depth = vits_pure(x)
            feats = vits_pure.forward_features(x[0])
            pos = vits_pure.pretrained.interpolate_pos_encoding(55, 84, 126)
    finally:
        for h in hooks:
            h.remove()
    errors = {"pos_embed": rel_err(pos, g["pretrained.interpolate_pos_encoding:pos_embed_for_84x126"])}
    for i, block in enumerate((2, 5, 8, 11)):
        errors[f"block{block}"] = rel_err(feats[i][0][0], g[f"pretrained.blocks.{block}:normed_patch_tokens_frame0"])
    for k in range(4):
        errors[f"mm{k}"] = rel_err(captured[f"mm{k}"][0], g[f"head.motion_modules.{k}:output_BCThw_frames_first_last"])
    errors["pre_relu"] = rel_err(torch.cat(captured["pre"]), g["head.scratch.output_conv2.2:pre_relu_output"])
    assert max(errors.values()) <= TOL, errors
    assert rel_err(depth, g["depth"]) <= TOL  # degenerate (0.1 % non-zero): checked after the above
    with torch.no_grad():
        assert rel_err(vits(x), g["depth_override"]) <= TOL


@pytest.mark.slow
def test_direct_forward_vitl() -> None:
    g = golden("vitl")
    model = VideoDepthAnything(**manifest_file("vitl")["constructor"]).eval()
    load_strict(model, golden_state_dict("vitl", override=True), source="vitl golden weights")
    pre: list[torch.Tensor] = []
    hook = model.head.scratch.output_conv2[2].register_forward_hook(lambda m, i, o: pre.append(o.clone()))
    with torch.no_grad():
        depth = model(torch.from_numpy(g["input"].astype(np.float32)))
    hook.remove()
    # the golden pre-ReLU output is from the pure rule: the override is its exact negation
    assert rel_err(-torch.cat(pre), g["head.scratch.output_conv2.2:pre_relu_output"]) <= TOL
    assert rel_err(depth, g["depth_override"]) <= TOL


def test_forward_rejects_bad_inputs(vits: VideoDepthAnything) -> None:
    with pytest.raises(ValueError, match="longer than num_frames=32"):
        vits(torch.zeros(1, 33, 3, 14, 14))
    with pytest.raises(ValueError, match="not a multiple of the patch size 14"):
        vits(torch.zeros(1, 2, 3, 14, 20))
    with pytest.raises(ValueError, match=r"expected \[B,T,3,H,W\]"):
        vits(torch.zeros(2, 3, 14, 14))


# -- preprocessing and alignment ------------------------------------------------------------------

def test_network_size_rounds_half_to_even() -> None:
    assert network_size(48, 72, 98) == (98, 140)  # 147 px = 10.5 patches -> 10 (not 11)
    assert network_size(480, 640, 518) == (518, 686)
    assert network_size(720, 1280, 518) == (518, 924)
    # long/short > 1.78 shrinks input_size: int(518*1.777/2.4) = 383 -> 27.36 -> 27 patches
    assert network_size(500, 1200, 518) == (378, 910)
    # snapped below input_size -> rounded up instead: 100 -> 98 < 100 -> 112
    assert network_size(100, 100, 100) == (112, 112)


def test_frame_transform_limits_max_res_for_the_network_only() -> None:
    t = FrameTransform.create(720, 1280, input_size=518, max_res=640)
    assert (t.frame_size, t.work_size, t.net_size) == ((720, 1280), (360, 640), (518, 924))
    assert FrameTransform.create(48, 72, input_size=98, max_res=1280).work_size == (48, 72)
    x = t(torch.zeros(2, 3, 720, 1280, dtype=torch.uint8))
    assert tuple(x.shape) == (2, 3, 518, 924)
    with pytest.raises(ValueError, match="expected uint8"):
        t(torch.zeros(2, 3, 48, 72, dtype=torch.uint8))


def test_fit_scale_shift_and_crossfade() -> None:
    p = torch.rand(2, 5, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    s, t = fit_scale_shift(p, 2.5 * p - 0.75)
    assert s == pytest.approx(2.5, abs=1e-9) and t == pytest.approx(-0.75, abs=1e-9)
    assert fit_scale_shift(torch.ones(4), torch.rand(4)) == (1.0, 0.0)  # singular
    assert torch.equal(apply_scale_shift(torch.tensor([1.0, -2.0]), 1.0, 0.5), torch.tensor([1.5, 0.0]))
    old, new = torch.zeros(8, 1, 1), torch.ones(8, 1, 1)
    assert torch.allclose(crossfade(old, new).flatten(), torch.arange(8) / 7)


# -- (b) offline procedure, (c) streaming -----------------------------------------------------------

def test_offline_procedure_vits(vits: VideoDepthAnything) -> None:
    g = golden("vits_video")
    depth, windows = infer_video_depth(vits, clip_frames(), input_size=98)
    assert [list(w.net_input_shape) for w in windows] == g["meta"]["net_input_shape_per_window"]
    fits = np.array([(w.scale, w.shift) for w in windows[1:]])
    assert np.abs(fits - g["scale_shift"]).max() <= 1e-4 * np.abs(g["scale_shift"]).max()
    assert rel_err(depth, g["depth"]) <= TOL


def test_offline_procedure_metric_vits() -> None:
    g = golden("vits_video")
    model = _model("metric_vits", override=True, metric=True)
    depth, windows = infer_video_depth(model, clip_frames(), input_size=98)
    assert all((w.scale, w.shift) == (1.0, 0.0) for w in windows)
    assert rel_err(depth, g["depth_metric"]) <= TOL_FP16_STORED


def test_stream_procedure_vits(vits: VideoDepthAnything) -> None:
    g = golden("vits_stream")
    proc = StreamDepth(default_step_runner(vits))
    state = proc.init_state(48, 72, input_size=98)
    frames = clip_frames()
    first, state = proc.push(state, frames[:1])
    rest, state = proc.push(state, frames[1:])
    assert rel_err(torch.cat([first, rest]), g["depth"]) <= TOL
    assert list(state.cache.frame_ids) == g["meta"]["frame_id_list_after_last_frame"]
    assert len(state.cache.entries) == g["meta"]["n_cached_entries_after_last_frame"]


# -- memory: a window in parts ----------------------------------------------------------------

def _in_parts(model: VideoDepthAnything, frames: int, position_frames: int) -> None:
    model.frames_per_pass = frames
    for mm in model.head.motion_modules:
        mm.temporal_transformer.position_frames_per_pass = position_frames


def test_window_in_parts_gives_the_same_values(vits: VideoDepthAnything) -> None:
    """Encoder frames and temporal positions in small parts (the memory bound) give the values
    of one pass, for a window and for streaming steps that attend to cached states."""
    x = torch.randn(1, 10, 3, 70, 126, generator=torch.Generator().manual_seed(3))  # 5x9 patches
    with torch.inference_mode():
        _in_parts(vits, 1000, 10**9)
        whole = vits(x)
        cache, whole_steps = None, []
        for i in range(4):
            d, cache = vits.stream_step(x[:, i], cache)
            whole_steps.append(d)
        _in_parts(vits, 3, 70)  # 10 frames in 4 parts; 45..720 positions in parts of 7 (70 in a step)
        parts = vits(x)
        cache, part_steps = None, []
        for i in range(4):
            d, cache = vits.stream_step(x[:, i], cache)
            part_steps.append(d)
    _in_parts(vits, FRAMES_PER_PASS, POSITION_FRAMES_PER_PASS)
    # equal up to float summation order (small matrix products may take other kernels)
    for a, b in [(whole, parts), *zip(whole_steps, part_steps)]:
        assert float((a - b).abs().max()) <= 1e-5 * float(a.abs().max())
