"""Evaluation: table layout, bar logic and baseline tuning on tiny held-out sets."""
from __future__ import annotations

import torch

from vdp.refiner.evaluate import EvalSequence, check_bar, evaluate, format_table, frame_abs_rel, harm


def test_evaluate_shipped_on_tiny_split():
    r = evaluate(None, test_count=1, val_count=1, frames=24, height=32, width=48, oracle=False,
                 log=lambda s: None)
    rows = r["rows"]
    assert {"ground truth", "teacher (raw)", "refiner", "refiner, no confidence"} <= set(rows)
    assert any(k.startswith("EMA") for k in rows) and any(k.startswith("bilateral") for k in rows)
    assert any(k.startswith("robust scan") and k.endswith("(val-tuned)") for k in rows)
    assert len(r["params"]["robust_scan_val"]) == 2
    assert rows["ground truth"]["abs_rel"] == 0.0
    assert rows["refiner"]["flicker"] < rows["teacher (raw)"]["flicker"]
    assert "tae" in rows["refiner"] and set(rows["refiner"]["strata"]) == {"low", "mid", "high"}
    pf = rows["refiner"]["per_frame"]
    assert pf["frames"] == 24 and 0 <= pf["frames_worse"] <= pf["frames_worse_any"] <= 24
    assert rows["teacher (raw)"]["per_frame"]["frames_worse_any"] == 0
    assert rows["ground truth"]["per_frame"]["worst_delta"] < 0      # every frame better
    assert "consistency_passed" in r["bar"]
    table = format_table(r)
    assert "| refiner |" in table and "By teacher confidence" in table and "Bar:" in table
    assert "frames worse >0.005" in table and "Consistency bar:" in table
    assert "tae_reduction_vs_best_robust_scan" in r["bar"] and "the best robust scan" in table


def test_evaluate_with_frame_shift_limit_adds_the_unlimited_row():
    r = evaluate(None, test_count=1, val_count=1, frames=24, height=32, width=48, oracle=False,
                 family="shimmer", max_frame_shift=0.0, log=lambda s: None)
    rows = r["rows"]
    assert r["setup"]["max_frame_shift"] == 0.0
    lim, free = rows["refiner"], rows["refiner, no frame-shift limit"]
    assert lim["abs_rel"] != free["abs_rel"]
    # a zero limit keeps every frame's median: at most the local change can make a frame worse
    assert lim["per_frame"]["worst_delta"] <= free["per_frame"]["worst_delta"]
    assert lim["flicker"] < rows["teacher (raw)"]["flicker"]


def test_per_frame_harm_counts_and_locates_the_worst_frame():
    gt = torch.full((4, 2, 3), 2.0)
    teacher = gt * torch.tensor([1.02, 1.0, 1.04, 1.01])[:, None, None]   # AbsRel .02 0 .04 .01
    seq = EvalSequence("s", gt, torch.ones_like(gt, dtype=torch.bool), teacher)
    torch.testing.assert_close(frame_abs_rel(teacher, gt, seq.valid),
                               torch.tensor([0.02, 0.0, 0.04, 0.01], dtype=torch.float64))
    pred = gt * torch.tensor([1.01, 1.003, 1.05, 1.02])[:, None, None]     # .01 .003 .05 .02
    h = harm([pred], [seq])
    assert h["frames"] == 4 and h["frames_worse"] == 2 and h["frames_worse_any"] == 3
    assert abs(h["worst_delta"] - 0.01) < 1e-6 and h["worst_frame"].startswith("s:")
    seq.valid[1] = False                                              # frame without ground truth
    assert harm([pred], [seq])["frames"] == 3


def test_sequence_aligned_harm_ignores_a_persistent_bias():
    gt = torch.full((4, 2, 3), 2.0)
    valid = torch.ones_like(gt, dtype=torch.bool)
    # teacher: +5 % bias everywhere, plus jitter that cancels it on frame 1 (AbsRel .008 there)
    teacher = gt * 1.05 * torch.tensor([1.0, 0.96, 1.03, 1.0])[:, None, None]
    steady = gt * 1.05                                   # consistent, keeps the bias
    h = harm([steady], [EvalSequence("s", gt, valid, teacher)])
    assert h["frames_worse"] == 1 and h["worst_frame"].startswith("s:1")
    assert h["frames_worse_aligned"] == 0                # harm only by the teacher's lucky frame
    wobbly = gt * torch.tensor([1.0, 1.0, 1.0, 1.03])[:, None, None]
    assert harm([wobbly], [EvalSequence("s", gt, valid, gt.clone())])["frames_worse_aligned"] == 1


def test_bar_logic():
    base = {"abs_rel": 0.05, "flicker": 0.010}
    rows = {"teacher (raw)": base, "EMA a=0.5 (val-tuned)": {"abs_rel": 0.05, "flicker": 0.006},
            "refiner": {"abs_rel": 0.0504, "flicker": 0.005}}
    assert check_bar(rows)["passed"]
    rows["refiner"] = {"abs_rel": 0.0506, "flicker": 0.005}          # AbsRel +1.2 %
    assert not check_bar(rows)["passed"]
    rows["refiner"] = {"abs_rel": 0.05, "flicker": 0.0065}           # worse than EMA
    assert not check_bar(rows)["passed"]
    rows["refiner"] = {"abs_rel": 0.0504, "flicker": 0.005}
    rows["robust scan m,s=0.9,0.2 (val-tuned)"] = {"abs_rel": 0.05, "flicker": 0.004}
    assert not check_bar(rows)["passed"]                             # the robust scan counts too


def test_consistency_bar_logic():
    pf = lambda n, aligned=0: {"frames": 10, "frames_worse": n, "worst_delta": 0.001,  # noqa: E731
                               "worst_frame": "s:1", "frames_worse_aligned": aligned}
    rows = {"teacher (raw)": {"abs_rel": 0.05, "flicker": 0.01, "tae": 0.02},
            "bilateral a (val-tuned)": {"abs_rel": 0.045, "flicker": 0.004, "tae": 0.010},
            "bilateral b (test-oracle)": {"abs_rel": 0.046, "flicker": 0.003, "tae": 0.008},
            "refiner": {"abs_rel": 0.044, "flicker": 0.002, "tae": 0.0071, "per_frame": pf(0)}}
    b = check_bar(rows)
    assert b["consistency_passed"] and abs(b["tae_reduction_vs_best_bilateral"] - 0.1125) < 1e-9
    rows["refiner"]["tae"] = 0.0073                                  # only 8.75 % below 0.008
    assert not check_bar(rows)["consistency_passed"]
    rows["refiner"].update(tae=0.007, abs_rel=0.0461)                # AbsRel worse than the best
    assert not check_bar(rows)["consistency_passed"]
    rows["refiner"].update(abs_rel=0.044, per_frame=pf(1))           # one frame made worse
    b = check_bar(rows)
    assert not b["consistency_passed"] and b["consistency_passed_aligned"]
    rows["refiner"].update(per_frame=pf(1, aligned=1))               # worse after alignment too
    assert not check_bar(rows)["consistency_passed_aligned"]
    rows["robust scan m,s=0.9,0.2 (val-tuned)"] = {"abs_rel": 0.045, "flicker": 0.003, "tae": 0.005}
    assert abs(check_bar(rows)["tae_reduction_vs_best_robust_scan"] - (1 - 0.007 / 0.005)) < 1e-9
    del rows["refiner"]["per_frame"]
    assert "consistency_passed" not in check_bar(rows)


def test_steady_scale_oracle_removes_frame_scale_flicker_and_keeps_the_sequence_bias():
    from vdp.refiner.evaluate import steady_scale_oracle

    g = torch.Generator().manual_seed(0)
    gt = torch.rand(5, 6, 8, generator=g) * 4 + 1
    valid = torch.ones_like(gt, dtype=torch.bool)
    valid[2, :3] = False
    jitter = torch.tensor([1.0, 0.95, 1.03, 1.0, 0.97])[:, None, None]
    teacher = gt * 1.05 * jitter
    out = steady_scale_oracle(teacher, gt, valid)
    ratio = torch.log(out / gt)
    per_frame = torch.stack([ratio[f][valid[f]].median() for f in range(5)])
    torch.testing.assert_close(per_frame, torch.full((5,), float(per_frame[0])), rtol=0, atol=1e-6)
    assert abs(float(per_frame[0])) > 0.01                    # the sequence's bias stays
    # frames 1 and 4: their jitter cancelled (most of) the bias; the oracle makes them worse, as
    # any steady output would
    h = harm([out], [EvalSequence("s", gt, valid, teacher)])
    assert h["frames_worse"] == 2 and h["worst_frame"].startswith("s:1 ")
