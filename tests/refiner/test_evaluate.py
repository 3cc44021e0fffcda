"""Evaluation: table layout, bar logic and baseline tuning on tiny held-out sets."""
from __future__ import annotations

from vdp.refiner.evaluate import check_bar, evaluate, format_table


def test_evaluate_shipped_on_tiny_split():
    r = evaluate(None, test_count=1, val_count=1, frames=24, height=32, width=48, oracle=False,
                 log=lambda s: None)
    rows = r["rows"]
    assert {"ground truth", "teacher (raw)", "refiner", "refiner, no confidence"} <= set(rows)
    assert any(k.startswith("EMA") for k in rows) and any(k.startswith("bilateral") for k in rows)
    assert rows["ground truth"]["abs_rel"] == 0.0
    assert rows["refiner"]["flicker"] < rows["teacher (raw)"]["flicker"]
    assert "tae" in rows["refiner"] and set(rows["refiner"]["strata"]) == {"low", "mid", "high"}
    table = format_table(r)
    assert "| refiner |" in table and "By teacher confidence" in table and "Bar:" in table


def test_bar_logic():
    base = {"abs_rel": 0.05, "flicker": 0.010}
    rows = {"teacher (raw)": base, "EMA a=0.5 (val-tuned)": {"abs_rel": 0.05, "flicker": 0.006},
            "refiner": {"abs_rel": 0.0504, "flicker": 0.005}}
    assert check_bar(rows)["passed"]
    rows["refiner"] = {"abs_rel": 0.0506, "flicker": 0.005}          # AbsRel +1.2 %
    assert not check_bar(rows)["passed"]
    rows["refiner"] = {"abs_rel": 0.05, "flicker": 0.0065}           # worse than EMA
    assert not check_bar(rows)["passed"]
