"""Training: determinism, progress log, timeout, losses, sampling, RGB-D data."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from vdp.errors import SpecError
from vdp.models.refiner import PRESETS, load_refiner
from vdp.models.refiner.config import with_windows
from vdp.refiner.losses import LossWeights, refiner_loss
from vdp.refiner.sampling import make_batch
from vdp.refiner.train import TrainConfig, build_pool, train

SMALL = dict(batch=1, pool_clips=2, clip_frames=30, height=32, width=48, log_every=1, select_every=0)


def test_training_is_deterministic_and_logs_progress(tmp_path):
    lines: list[str] = []
    cfg = TrainConfig(steps=2, **SMALL)
    meta = train(cfg, tmp_path / "a.pt", log=lines.append)
    train(cfg, tmp_path / "b.pt", log=lambda s: None)
    train(replace(cfg, run_windows=None), tmp_path / "c.pt", log=lambda s: None)
    a, b, c = (load_refiner(tmp_path / n) for n in ("a.pt", "b.pt", "c.pt"))
    assert a.config == with_windows(PRESETS["v1"], 32, 8)  # the defaults are the shipped recipe
    assert c.config == PRESETS["v1"]                        # the windows it trained on
    for k, v in a.state_dict().items():                     # the run windows change no weight
        assert torch.equal(v, b.state_dict()[k]) and torch.equal(v, c.state_dict()[k]), k
    steps = [s for s in lines if s.startswith("step")]
    assert len(steps) == 2 and all(w in steps[0] for w in ("loss", "mean|dD|/D", "tiny", "clamp"))
    side = json.loads((tmp_path / "a.json").read_text())
    assert side["steps_done"] == 2 and len(side["history"]) == 2
    assert side["train_config"]["steps"] == 2 and side["train_config"]["run_windows"] == [32, 8]
    assert (side["config"]["window_frames"], side["config"]["overlap_frames"]) == (32, 8)
    assert meta["stopped_early"] is False


def test_run_windows_that_cannot_work_are_refused_before_training(tmp_path):
    for windows in ((8, 2), (32, 32), (32, -1)):  # v1's context reaches 12 frames back
        with pytest.raises(SpecError, match="run_windows"):
            train(TrainConfig(steps=1, run_windows=windows, **SMALL), tmp_path / "x.pt", log=lambda s: None)
    assert not (tmp_path / "x.pt").exists()


def test_timeout_still_saves(tmp_path):
    meta = train(TrainConfig(steps=50, timeout_s=0.0, **SMALL), tmp_path / "t.pt", log=lambda s: None)
    assert meta["stopped_early"] is True and meta["steps_done"] == 0
    load_refiner(tmp_path / "t.pt")


def test_batches_are_a_function_of_seed_and_step():
    pool = build_pool(TrainConfig(**SMALL))
    cfg = PRESETS["v0"]
    a = make_batch(pool, cfg, 3, seed=0, step=5)
    b = make_batch(pool, cfg, 3, seed=0, step=5)
    c = make_batch(pool, cfg, 3, seed=0, step=6)
    assert torch.equal(a.windows, b.windows) and not torch.equal(a.windows, c.windows)
    assert a.windows.shape == (6, 15, 32, 48)
    assert a.inp.shape == a.teacher.shape == a.gt.shape == a.valid.shape == (3, 18, 32, 48)
    assert bool((a.windows > 0).all())


def test_loss_without_ground_truth_and_temporal_mask():
    w = LossWeights()
    teacher = torch.zeros(1, 3, 2, 2)
    out = teacher.clone()
    out[:, 1] += 0.01                        # flicker in a steady region: penalised
    rho = out - teacher
    conf = torch.ones_like(out)
    loss, parts = refiner_loss(out, rho, teacher, conf, None, None, w)
    assert parts["gt"] == 0 and parts["temporal"] == pytest.approx(0.01 * 2 / 2)
    jumpy = teacher.clone()
    jumpy[:, 1:] += 1.0                      # a real jump in the teacher: masked out
    _, parts2 = refiner_loss(jumpy, torch.zeros_like(jumpy), jumpy, conf, None, None, w)
    assert parts2["temporal"] == 0


def test_train_on_rgbd_folder(tmp_path):
    from tests.refiner.test_rgbd import _write_sequence

    for name in ("s1", "s2"):
        _write_sequence(tmp_path / "data" / name, frames=30, h=16, w=24, poses=False, teacher=None)
    meta = train(TrainConfig(steps=1, data=str(tmp_path / "data"), **{**SMALL, "height": 16, "width": 24}),
                 tmp_path / "r.pt", log=lambda s: None)
    assert meta["steps_done"] == 1
    _write_sequence(tmp_path / "short" / "s", frames=10, h=16, w=24, poses=False, teacher=None)
    with pytest.raises(SpecError, match="need 30 frames"):
        build_pool(TrainConfig(data=str(tmp_path / "short"), **SMALL))


def test_harm_loss_counts_only_frames_made_worse():
    from vdp.refiner.losses import frame_harm

    gt = torch.zeros(1, 3, 4, 4)
    inp = gt + torch.tensor([0.02, 0.0, 0.05])[None, :, None, None]
    out = gt + torch.tensor([0.01, 0.03, 0.05])[None, :, None, None]   # better, worse by .03, same
    valid = torch.ones_like(gt)
    assert abs(float(frame_harm(out, inp, gt, valid)) - 0.01) < 1e-7      # mean of (0, .03, 0)
    valid[0, 1] = 0                                                     # the worse frame has no gt
    assert float(frame_harm(out, inp, gt, valid)) == 0.0
    rho = out - inp
    w = LossWeights(harm=2.0)
    total, parts = refiner_loss(out, rho, inp, torch.ones_like(gt), gt, torch.ones_like(gt) > 0, w)
    base, _ = refiner_loss(out, rho, inp, torch.ones_like(gt), gt, torch.ones_like(gt) > 0, LossWeights())
    assert abs(parts["harm"] - 0.01) < 1e-7 and abs(float(total - base) - 0.02) < 1e-6


def test_fine_tune_with_families_and_harm_is_deterministic(tmp_path):
    from dataclasses import replace

    from vdp.refiner.sampling import SamplingOptions

    start = tmp_path / "s.pt"
    train(TrainConfig(steps=1, **SMALL), start, log=lambda s: None)
    cfg = TrainConfig(steps=2, init=str(start), sampling=SamplingOptions(families=("vda_windows", "shimmer")),
                      loss=LossWeights(harm=5.0), **SMALL)
    lines: list[str] = []
    train(cfg, tmp_path / "a.pt", log=lines.append)
    train(cfg, tmp_path / "b.pt", log=lambda s: None)
    a, b, s = (load_refiner(tmp_path / n).state_dict() for n in ("a.pt", "b.pt", "s.pt"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], s[k]) for k in a)               # it trained from s
    side = json.loads((tmp_path / "a.json").read_text())
    assert side["train_config"]["init"] == str(start)
    assert side["train_config"]["sampling"]["families"] == ["vda_windows", "shimmer"]
    with pytest.raises(SpecError, match="held out for evaluation"):
        train(replace(cfg, sampling=SamplingOptions(families=("drift",))), tmp_path / "c.pt")


def test_selection_saves_the_best_scoring_weights(tmp_path):
    from vdp.refiner.selection import selection_score, selection_set

    lines: list[str] = []
    cfg = TrainConfig(steps=3, run_windows=None, **{**SMALL, "select_every": 2})  # scored on these windows
    meta = train(cfg, tmp_path / "s.pt", log=lines.append)
    sel = meta["selection"]
    assert [h["step"] for h in sel["history"]] == [2, 3]          # every 2 steps, and the end
    best = min(sel["history"], key=lambda h: h["score"])
    assert sel["chosen_step"] == best["step"]
    assert sum(line.startswith("select") for line in lines) == 2
    # the saved weights are the chosen ones: re-scoring them gives the recorded score
    again = selection_score(load_refiner(tmp_path / "s.pt"),
                            selection_set(cfg.sampling.families, frames=30, height=32, width=48))
    assert again["score"] == pytest.approx(best["score"], rel=1e-6)
    assert again["frames_worse"] == best["frames_worse"]
    side = json.loads((tmp_path / "s.json").read_text())
    assert side["train_config"]["select_every"] == 2 and side["selection"]["chosen_step"] == best["step"]


def test_selection_score_rewards_consistency_and_counts_harm():
    from vdp.refiner.selection import HARM_WEIGHT, selection_score, selection_set

    sel = selection_set(("ar1_scale",), frames=24, height=32, width=48)
    s = selection_score(load_refiner(None), sel)
    assert s["frames"] == 24 and 0 <= s["frames_worse"] <= 24
    assert s["score"] == pytest.approx(s["tae"] / sel.teacher_tae + HARM_WEIGHT * s["frames_worse"] / 24)
    assert s["tae"] < sel.teacher_tae                   # the shipped refiner is more consistent


def test_rgb_windows_are_the_same_frames_as_the_depth_windows():
    from vdp.refiner.sampling import ClipPool, SamplingOptions

    t, h, w = 40, 4, 6
    depth = (100.0 * torch.arange(1, t + 1)[:, None, None] + torch.arange(1, w + 1)[None, None, :]
             ).expand(t, h, w).contiguous()
    rgb = torch.zeros(t, 3, h, w, dtype=torch.uint8)
    rgb[:, 0] = torch.arange(t, dtype=torch.uint8)[:, None, None]
    rgb[:, 1] = torch.arange(w, dtype=torch.uint8)[None, None, :]
    pool = ClipPool(depth=[depth], teacher=[depth.clone()], rgb=[rgb])
    plain = SamplingOptions(jitter=0.0, relative=0.0, rgb_gain=0.0, rgb_noise=0.0)
    flips = set()
    for step in range(12):
        b = make_batch(pool, PRESETS["v1"], 2, seed=3, step=step, opts=plain)
        assert b.rgb.shape == (4, 15, 3, h, w) and b.rgb.dtype == torch.uint8
        expect = 100.0 * (b.rgb[:, :, 0].float() + 1) + b.rgb[:, :, 1].float() + 1
        torch.testing.assert_close(b.windows, expect, rtol=0, atol=1e-3)
        flips.add((bool(b.windows[0, -1, 0, 0] < b.windows[0, -2, 0, 0]),
                   bool(b.windows[0, 0, 0, 0] > b.windows[0, 0, 0, 1])))
    assert len(flips) >= 3                        # time and mirror flips were both exercised


def test_an_rgb_pool_leaves_the_depth_samples_of_a_depth_only_pool_unchanged():
    depth_only = build_pool(TrainConfig(preset="v0", **SMALL))
    with_rgb = build_pool(TrainConfig(preset="v1", **SMALL))
    assert depth_only.rgb is None and with_rgb.rgb is not None
    a = make_batch(depth_only, PRESETS["v0"], 2, seed=1, step=4)
    b = make_batch(with_rgb, PRESETS["v1"], 2, seed=1, step=4)
    assert a.rgb is None and b.rgb.shape == (4, 15, 3, 32, 48)
    assert torch.equal(a.windows, b.windows) and torch.equal(a.gt, b.gt)


def test_defaults_are_the_shipped_recipe_and_v0_recipe_is_kept():
    from dataclasses import asdict

    from vdp.models.refiner import SHIPPED_METADATA
    from vdp.refiner.train import V0_RECIPE

    shipped = json.loads(SHIPPED_METADATA.read_text())["train_config"]
    mine = json.loads(json.dumps(TrainConfig().to_dict()))
    assert mine == shipped
    v0 = TrainConfig(**V0_RECIPE)
    assert v0.preset == "v0" and v0.steps == 1000 and v0.select_every == 0
    assert asdict(v0.loss)["harm"] == 0 and v0.sampling.families == ("classic",)
