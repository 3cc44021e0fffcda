"""Parity of our RVM `MattingNetwork` with the official model (fixtures: tests/resources/parity/rvm).

The goldens were produced by the official code with deterministic synthetic weights; see
the fixture README (shared/parity/rvm/README.md) for what each key holds and why these
tolerances: rtol=atol=1e-5 everywhere except the fast-guided-filter keys (atol 1e-3).
"""
from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.resources.synthetic_weights import load_manifest, make_manifest, synthetic_state_dict
from vdp.models.rvm import MattingNetwork, auto_downsample_ratio

FIXTURES = Path(__file__).parent.parent / "resources" / "parity" / "rvm"
VARIANTS = ("mobilenetv3", "resnet50")
CHUNKS = (2, 2, 2, 1)
RATIO = 0.375
F4_MODULE = {"mobilenetv3": "backbone.features.16", "resnet50": "backbone.layer4"}
TOL = {"rtol": 1e-5, "atol": 1e-5}
FGF_TOL = {"rtol": 1e-5, "atol": 1e-3}


def _manifest(variant: str) -> dict[str, dict]:
    return load_manifest(FIXTURES / f"manifest_{variant}.json")


@cache
def _synthetic(variant: str) -> dict[str, torch.Tensor]:
    return synthetic_state_dict(_manifest(variant))


def _model(variant: str, refiner: str = "deep_guided_filter") -> MattingNetwork:
    sd = _synthetic(variant)
    if refiner == "fast_guided_filter":
        sd = {k: v for k, v in sd.items() if not k.startswith("refiner.")}
    model = MattingNetwork(variant, refiner=refiner).eval()
    model.load_state_dict(sd, strict=True)
    return model


def _replay(model: MattingNetwork, src: torch.Tensor, *, hooks: dict[str, str] | None = None):
    """Run the clip in CHUNKS as [1,c,3,H,W] calls, feeding back states.

    Returns outputs per frame, states after call 0 and at the end, and hook captures per call.
    """
    captured: dict[str, list] = {name: [] for name in (hooks or {})}
    handles = []
    modules = dict(model.named_modules())
    for name, path in (hooks or {}).items():
        handles.append(modules[path].register_forward_hook(
            lambda _m, _i, out, name=name: captured[name].append(out)))
    fgr, pha, rec, rec0, start = [], [], [None] * 4, None, 0
    try:
        with torch.no_grad():
            for c in CHUNKS:
                f, p, *rec = model(src[start:start + c][None], *rec, downsample_ratio=RATIO)
                fgr.append(f[0])
                pha.append(p[0])
                rec0 = rec0 or list(rec)
                start += c
    finally:
        for h in handles:
            h.remove()
    return torch.cat(fgr), torch.cat(pha), rec0, rec, captured


def _close(ours: torch.Tensor, golden: np.ndarray, key: str, tol: dict = TOL) -> None:
    ours_np = ours.detach().numpy()
    assert ours_np.shape == golden.shape, f"{key}: shape {ours_np.shape} vs golden {golden.shape}"
    np.testing.assert_allclose(ours_np, golden, err_msg=key, **tol)


@pytest.fixture(scope="module", params=VARIANTS)
def golden(request) -> tuple[str, dict[str, np.ndarray]]:
    with np.load(FIXTURES / f"golden_{request.param}.npz", allow_pickle=False) as z:
        return request.param, {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def src(golden) -> torch.Tensor:
    return torch.from_numpy(golden[1]["src_u8"]).float() / 255


@pytest.mark.parametrize("variant", VARIANTS)
def test_state_dict_matches_manifest(variant):
    ours = make_manifest(MattingNetwork(variant).state_dict())["keys"]
    official = _manifest(variant)
    assert list(ours) == list(official)  # same keys, in the official order
    assert ours == official  # and the same shapes and dtypes


@pytest.mark.parametrize("variant", VARIANTS)
def test_fast_guided_filter_has_no_refiner_keys(variant):
    dgf = MattingNetwork(variant).state_dict()
    fgf = MattingNetwork(variant, refiner="fast_guided_filter").state_dict()
    assert set(dgf) - set(fgf) == {k for k in dgf if k.startswith("refiner.")}
    assert len(set(dgf) - set(fgf)) == 15
    with pytest.raises(RuntimeError, match="Unexpected key.*refiner.box_filter.weight"):
        MattingNetwork(variant, refiner="fast_guided_filter").load_state_dict(
            _synthetic(variant), strict=True)


def test_deep_guided_filter_clip(golden, src):
    variant, g = golden
    model = _model(variant)
    hooks = {"f4": F4_MODULE[variant], "aspp": "aspp", "project_mat": "project_mat",
             "refiner": "refiner"}
    fgr, pha, rec0, rec, cap = _replay(model, src, hooks=hooks)
    _close(fgr, g["fgr"], "fgr")
    _close(pha, g["pha"], "pha")
    for i in range(4):
        _close(rec0[i], g[f"rec_after_call0/r{i + 1}"], f"rec_after_call0/r{i + 1}")
        _close(rec[i], g[f"r{i + 1}"], f"r{i + 1}")
    _close(cap["f4"][0], g[f"inter/{F4_MODULE[variant]}"], "inter/f4")
    _close(cap["aspp"][0], g["inter/aspp"], "inter/aspp")
    _close(torch.cat([o[0] for o in cap["project_mat"]]), g["inter/project_mat"], "inter/project_mat")
    pha_raw = torch.cat([o[1][0] for o in cap["refiner"]])
    _close(pha_raw, g["inter/refiner.pha_raw"], "inter/refiner.pha_raw")
    assert torch.equal(pha_raw.clamp(0, 1), pha)


def test_fast_guided_filter_clip(golden, src):
    variant, g = golden
    model = _model(variant, refiner="fast_guided_filter")
    fgr, pha, _, rec, cap = _replay(model, src, hooks={"refiner": "refiner"})
    _close(fgr[-1:], g["fgf/fgr_last"], "fgf/fgr_last", FGF_TOL)
    _close(pha[-1:], g["fgf/pha_last"], "fgf/pha_last", FGF_TOL)
    _close(cap["refiner"][-1][1][0, -1:], g["fgf/refiner.pha_raw_last"],
           "fgf/refiner.pha_raw_last", FGF_TOL)
    for i in range(4):  # the refiner does not feed the recurrence
        _close(rec[i], g[f"r{i + 1}"], f"fgf r{i + 1}")


def test_ratio_one_skips_refiner(golden, src):
    variant, g = golden
    model = _model(variant)
    raw = []
    handle = model.project_mat.register_forward_hook(lambda _m, _i, out: raw.append(out))
    calls = []
    model.refiner.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        fgr, pha, *_ = model(src[:1], downsample_ratio=1)  # 4-D input, fresh state
    handle.remove()
    assert not calls
    _close(fgr, g["ratio1/fgr"], "ratio1/fgr")
    _close(pha, g["ratio1/pha"], "ratio1/pha")
    _close(raw[0][:, 3:], g["ratio1/project_mat.pha_raw"], "ratio1/project_mat.pha_raw")


def test_segmentation_pass(golden, src):
    variant, g = golden
    with torch.no_grad():
        seg, *rec = _model(variant)(src[:2][None], downsample_ratio=RATIO, segmentation_pass=True)
    assert len(rec) == 4
    _close(seg[0], g["seg/call0"], "seg/call0")


def test_four_d_calls_match_clip_calls(golden, src):
    """Per-frame [B,3,H,W] calls give the same result as the golden's chunked 5-D calls."""
    variant, g = golden
    model = _model(variant)
    rec, fgr = [None] * 4, []
    with torch.no_grad():
        for t in range(src.shape[0]):
            f, _, *rec = model(src[t:t + 1], *rec, downsample_ratio=RATIO)
            fgr.append(f)
    _close(torch.cat(fgr), g["fgr"], "fgr (per-frame calls)")
    _close(rec[0], g["r1"], "r1 (per-frame calls)")


def test_constructor_rejects_unknown_names():
    with pytest.raises(ValueError, match="variant must be one of.*mobilenetv3.*resnet50"):
        MattingNetwork("resnet18")
    with pytest.raises(ValueError, match="refiner must be one of.*deep_guided_filter"):
        MattingNetwork("mobilenetv3", refiner="bilateral")


def test_forward_rejects_bad_input():
    model = MattingNetwork("mobilenetv3").eval()
    with pytest.raises(ValueError, match=r"src must be .*got \(1, 4, 32, 32\)"):
        model(torch.zeros(1, 4, 32, 32))
    with pytest.raises(ValueError, match="downsample_ratio must be in"):
        model(torch.zeros(1, 3, 32, 32), downsample_ratio=0)


@pytest.mark.parametrize(("height", "width", "ratio"), [
    (1080, 1920, 512 / 1920), (720, 1280, 0.4), (2160, 3840, 512 / 3840), (480, 854, 512 / 854),
    (1920, 1080, 512 / 1920), (512, 300, 1.0), (90, 160, 1.0)])
def test_auto_downsample_ratio(height, width, ratio):
    assert auto_downsample_ratio(height, width) == pytest.approx(ratio, abs=1e-12)
    # the low-resolution branch of the official examples is at most 512 px on the long side
    assert max(int(height * ratio), int(width * ratio)) <= 512


def test_auto_downsample_ratio_rejects_empty_frames():
    with pytest.raises(ValueError, match="frame size must be positive"):
        auto_downsample_ratio(0, 640)
