"""The refiner model: selective scan, bound, checkpoint format, and the shipped checkpoint."""
from __future__ import annotations

import json

import pytest
import torch

from vdp.errors import WeightsError
from vdp.models.refiner import (PRESETS, SHIPPED_CHECKPOINT, SHIPPED_METADATA, Refiner,
                                RefinerConfig, derive_confidence, load_refiner, save_refiner,
                                selective_scan, selective_scan_reference)
from vdp.models.refiner.config import with_windows
from vdp.refiner.windows import key_mask

SMALL = (2, 15, 32, 48)          # one batch of two windows at a small spatial size


def _scan_inputs(seed: int, t: int = 9, s: int = 4, di: int = 6, n: int = 5):
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)  # noqa: E731
    delta = torch.nn.functional.softplus(r(t, s, di))
    a = -torch.exp(r(di, n) * 0.5)
    return r(t, s, di), delta, a, r(t, s, n), r(t, s, n), r(di)


@pytest.mark.parametrize("reverse", [False, True])
def test_linear_scan_equals_quadratic_closed_form(reverse):
    for seed in range(3):
        args = _scan_inputs(seed)
        fast = selective_scan(*args, reverse=reverse)
        ref = selective_scan_reference(*args, reverse=reverse)
        torch.testing.assert_close(fast, ref, rtol=1e-10, atol=1e-10)


def test_scan_directions_differ_and_are_causal():
    x, delta, a, b, c, d = _scan_inputs(7)
    fwd = selective_scan(x, delta, a, b, c, d)
    x2 = x.clone()
    x2[-1] += 1.0                                  # change only the last step
    fwd2 = selective_scan(x2, delta, a, b, c, d)
    torch.testing.assert_close(fwd[:-1], fwd2[:-1])   # the forward scan cannot see the future
    bwd = selective_scan(x, delta, a, b, c, d, reverse=True)
    bwd2 = selective_scan(x2, delta, a, b, c, d, reverse=True)
    assert not torch.allclose(bwd[0], bwd2[0])         # the backward scan does


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_without_gradients_is_bit_identical_to_the_training_scan(reverse):
    # float32 as the model runs; the in-place loop must give the training loop's exact bits
    args = [v.float() for v in _scan_inputs(3, t=7, s=5, di=8, n=4)]
    plain = selective_scan(*args, reverse=reverse)
    tracked = [v.clone().requires_grad_(True) for v in args]
    trained = selective_scan(*tracked, reverse=reverse)
    assert torch.equal(plain, trained.detach())
    trained.sum().backward()                               # the training loop still has gradients
    assert all(v.grad is not None and torch.isfinite(v.grad).all() for v in tracked)


@pytest.mark.parametrize("reverse", [False, True])
def test_smoother_scan_without_gradients_is_bit_identical_to_the_training_scan(reverse):
    from vdp.models.refiner.smoother import robust_scan

    g = torch.Generator().manual_seed(5)
    ell = torch.randn(2, 9, 6, 7, generator=g) * 0.1      # two windows: strided output rows
    kappa = torch.rand(2, 9, 6, 7, generator=g)
    keep = torch.rand(2, 9, 6, 7, generator=g)
    sigma = torch.tensor(0.05)
    for k in (None, keep):
        plain = robust_scan(ell, kappa, sigma, reverse=reverse, keep=k)
        trained = robust_scan(ell, kappa.clone().requires_grad_(True), sigma, reverse=reverse, keep=k)
        assert trained.requires_grad
        assert torch.equal(plain, trained.detach())
        assert not torch.equal(plain, ell)                 # it did smooth


def test_scans_reuse_buffers_only_without_gradients_autocast_or_mixed_dtypes():
    from vdp.models.refiner.ssm import scans_in_place

    x = torch.zeros(3, 2)
    assert scans_in_place(x, x, None)
    assert not scans_in_place(x, x.clone().requires_grad_(True))
    assert not scans_in_place(x, x.half())                 # per-step results would change dtype
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not scans_in_place(x, x)
    with torch.no_grad():
        assert scans_in_place(x, x.clone().requires_grad_(True))


def test_untrained_v0_is_near_identity():
    torch.manual_seed(0)
    model = Refiner(PRESETS["v0"]).eval()
    depth = (torch.rand(2, 1, 32, 48) * 5 + 0.5) * (1 + 0.01 * torch.randn(2, 15, 1, 1))
    with torch.no_grad():
        out = model(depth, derive_confidence(depth, 4), key_mask(model.config))
    assert out.rho.shape == SMALL
    assert float(out.raw_low.abs().max()) == 0.0           # the residual head starts at zero
    assert float(out.rho.abs().max()) < 2e-3               # the smoother starts almost closed


def test_smoother_scan_is_selective():
    from vdp.models.refiner.smoother import robust_scan

    ell = torch.zeros(1, 10, 1, 2)
    ell[0, 5:, 0, 0] = 1.0                                 # pixel 0: a real step
    ell[0, 1::2, 0, 1] = 0.01                              # pixel 1: small flicker
    out = robust_scan(ell, torch.full_like(ell, 0.9), torch.tensor(0.05))
    assert float(out[0, 6, 0, 0]) > 0.99                   # the step resets the memory
    flicker = (out[0, 1:, 0, 1] - out[0, :-1, 0, 1]).abs().mean()
    assert float(flicker) < 0.2 * 0.01                     # the flicker is smoothed away


def test_windows_move_with_their_context_and_impossible_ones_are_refused():
    v1 = PRESETS["v1"]
    run = with_windows(v1, 32, 8)
    assert (run.window_frames, run.overlap_frames, run.stride_frames) == (32, 8, 24)
    # the context keyframes stay 12, 8 and 4 frames before each window's first frame
    assert [run.window_frames - k for k in run.keyframes] == [v1.window_frames - k for k in v1.keyframes] == [12, 8, 4]
    assert with_windows(v1, 12, 6) == v1
    for frames, overlap in ((11, 2), (32, 32), (32, -1), (1, 0)):
        with pytest.raises(ValueError, match="refiner windows"):
            with_windows(v1, frames, overlap)


def test_shipped_checkpoint_loads_and_is_small():
    from vdp.refiner.train import TrainConfig

    model = load_refiner()
    assert model.config == with_windows(PRESETS["v1"], *TrainConfig().run_windows) and model.config.rgb
    assert SHIPPED_CHECKPOINT.stat().st_size < 2_000_000
    meta = json.loads(SHIPPED_METADATA.read_text())
    assert RefinerConfig.from_dict(meta["config"]) == model.config
    bar = meta["metrics"]["bar"]              # the held-out table it shipped with (README)
    assert bar["flicker_reduction_vs_teacher"] >= 0.3 and bar["absrel_change_vs_teacher"] <= 0
    assert bar["tae_reduction_vs_best_bilateral"] >= 0.1
    assert set(meta["family_metrics"]) == {"classic", "vda_windows", "ar1_scale", "shimmer", "drift",
                                           "moving_objects", "camera_motion"}
    assert meta["train_config"]["steps"] == meta["steps_done"]


def test_shipped_residual_respects_bound_and_is_not_collapsed():
    model = load_refiner()
    t = model.config.context_frames + model.config.window_frames  # one window with its context
    g = torch.Generator().manual_seed(1)
    base = torch.rand(2, 1, 32, 48, generator=g) * 8 + 0.5
    jitter = 1 + 0.03 * torch.randn(2, t, 1, 1, generator=g)
    depth = base * jitter
    rgb = (torch.rand(2, 1, 3, 32, 48, generator=g) * 255).to(torch.uint8).expand(2, t, 3, 32, 48)
    with torch.no_grad():
        out = model(depth, derive_confidence(depth, 4), key_mask(model.config), rgb)
    d_out = depth * torch.exp(out.rho)
    bound = model.config.alpha * depth + model.config.beta
    assert bool(((d_out - depth).abs() <= bound * (1 + 1e-5)).all())
    assert float(out.rho.abs().mean()) > 1e-3          # it does something on jittery input
    assert float((out.saturation > 0.95).float().mean()) < 0.05


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(3)
    model = Refiner(PRESETS["v0"])
    with torch.no_grad():
        model.decoder.conv2.weight.normal_()
    path = tmp_path / "r.pt"
    save_refiner(model, path, {"note": "test"})
    loaded = load_refiner(path)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v)
    assert json.loads(path.with_suffix(".json").read_text())["note"] == "test"


def test_load_errors(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_refiner(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        load_refiner(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(1)}, other)
    with pytest.raises(WeightsError, match="not a vdp refiner checkpoint"):
        load_refiner(other)
    model = Refiner(PRESETS["v0"])
    bad = tmp_path / "bad.pt"
    save_refiner(model, bad)
    payload = torch.load(bad, weights_only=True)
    payload["config"]["d_inner"] = 32
    torch.save(payload, bad)
    with pytest.raises(WeightsError, match="does not match Refiner"):
        load_refiner(bad)
    payload["config"]["colour"] = 1
    torch.save(payload, bad)
    with pytest.raises(WeightsError, match="unknown fields"):
        load_refiner(bad)


def test_config_round_trip():
    cfg = RefinerConfig()
    assert RefinerConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.stride_frames == 6 and cfg.context_frames == 3


def test_motion_gate_resets_the_smoother_where_colour_changes():
    from vdp.models.refiner.smoother import TemporalSmoother

    ell = torch.zeros(1, 12, 1, 2)
    ell[0, 1::2] = 0.02                                    # both pixels flicker alike
    change = torch.zeros_like(ell)
    change[0, 1:, 0, 1] = 0.5                              # pixel 1 sees new content each frame
    smoother = TemporalSmoother(motion_gate=True)
    with torch.no_grad():
        out = ell + smoother(ell, torch.full_like(ell, 0.95), change)
    flicker = (out[0, 1:] - out[0, :-1]).abs().mean(dim=0)[0]
    assert float(flicker[0]) < 0.3 * 0.02                  # same colour: smoothed
    assert float(flicker[1]) > 0.95 * 0.02                 # new colour every frame: left alone
    with pytest.raises(ValueError, match="colour change"):
        smoother(ell, torch.full_like(ell, 0.95))


def _rgb_refiner(seed: int = 0) -> Refiner:
    """An RGB refiner whose residual head is not zero (an untrained one outputs ~nothing)."""
    torch.manual_seed(seed)
    model = Refiner(PRESETS["v1"]).eval()
    with torch.no_grad():
        model.decoder.conv2.weight.normal_(0.0, 0.05)
    return model


def test_rgb_refiner_reads_the_frames_and_refuses_to_run_without_them():
    from vdp.models.refiner.colour import RefinerInputError

    model = _rgb_refiner()
    depth = (torch.rand(2, 1, 32, 48) * 5 + 0.5) * (1 + 0.01 * torch.randn(2, 15, 1, 1))
    rgb = torch.randint(0, 256, (2, 15, 3, 32, 48), dtype=torch.uint8)
    keys = key_mask(model.config)
    with torch.no_grad():
        a = model(depth, None, keys, rgb).rho
        b = model(depth, None, keys, rgb.flip(1)).rho
    assert a.shape == SMALL and not torch.allclose(a, b)
    bound = torch.log1p(model.config.alpha + model.config.beta / depth)
    assert bool((a.abs() <= bound + 1e-6).all())           # RGB never loosens the bound
    with pytest.raises(RefinerInputError, match="RGB"):
        model(depth, None, keys)
    with pytest.raises(RefinerInputError, match=r"\[B, T, 3, H, W\]"):
        model(depth, None, keys, rgb[:, :, :, :16])


def test_depth_only_checkpoints_still_load_and_ignore_rgb(tmp_path):
    model = Refiner(PRESETS["v0"]).eval()
    save_refiner(model, tmp_path / "v0.pt")
    back = load_refiner(tmp_path / "v0.pt")
    assert back.config.rgb is False and back.in_channels == 5
    depth = torch.rand(1, 15, 16, 16) + 0.5
    with torch.no_grad():
        torch.testing.assert_close(back(depth).rho,
                                   back(depth, rgb=torch.zeros(1, 15, 3, 16, 16, dtype=torch.uint8)).rho)
