"""`vdp refiner train|eval` argument handling (wired into the main CLI by vdp.cli.main)."""
from __future__ import annotations

import argparse
import json

from vdp.cli.refiner import add_parser
from vdp.models.refiner import load_refiner


def _parse(argv):
    parser = argparse.ArgumentParser(prog="vdp")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_train_and_eval_commands(tmp_path, capsys):
    out = tmp_path / "r.pt"
    args = _parse(["refiner", "train", "--out", str(out), "--steps", "1", "--batch", "1",
                   "--pool-clips", "1", "--height", "32", "--width", "48", "--no-eval"])
    assert args.func(args) == 0
    load_refiner(out)
    assert "saved" in capsys.readouterr().out
    js = tmp_path / "e.json"
    args = _parse(["refiner", "eval", "--checkpoint", str(out), "--test", "1", "--val", "1",
                   "--frames", "24", "--height", "32", "--width", "48", "--no-oracle", "--json", str(js)])
    assert args.func(args) == 0
    assert "| teacher (raw) |" in capsys.readouterr().out
    assert "refiner" in json.loads(js.read_text())["rows"]
    args = _parse(["refiner", "eval", "--checkpoint", str(out), "--test", "1", "--val", "1",
                   "--frames", "24", "--height", "32", "--width", "48", "--no-oracle",
                   "--family", "drift", "--compare", f"again={out}", "--json", str(js)])
    assert args.func(args) == 0
    res = json.loads(js.read_text())
    assert res["setup"]["family"] == "drift" and res["setup"]["test"] == ["proc-900000-drift"]
    # the same checkpoint under another name gives the same row
    assert res["rows"]["refiner again"]["abs_rel"] == res["rows"]["refiner"]["abs_rel"]


def test_eval_argument_errors():
    import pytest

    from vdp.errors import SpecError

    args = _parse(["refiner", "eval", "--compare", "no-equals-sign"])
    with pytest.raises(SpecError, match="NAME=CHECKPOINT"):
        args.func(args)
    args = _parse(["refiner", "eval", "--data", "/some/dir", "--family", "drift"])
    with pytest.raises(SpecError, match="procedural data only"):
        args.func(args)
    args = _parse(["refiner", "eval", "--max-frame-shift", "-0.1"])
    with pytest.raises(SpecError, match="--max-frame-shift"):
        args.func(args)


def test_train_run_windows_argument(tmp_path):
    import pytest

    from vdp.errors import SpecError

    base = ["refiner", "train", "--steps", "1", "--batch", "1", "--pool-clips", "1", "--height", "32",
            "--width", "48", "--no-eval"]
    for bad, match in (("32", "FRAMES,OVERLAP"), ("8,2", "run_windows")):  # v1's context reaches 12 back
        args = _parse([*base, "--out", str(tmp_path / "bad.pt"), "--run-windows", bad])
        with pytest.raises(SpecError, match=match):
            args.func(args)
    args = _parse([*base, "--out", str(tmp_path / "t.pt"), "--run-windows", "training"])
    assert args.func(args) == 0
    assert load_refiner(tmp_path / "t.pt").config.window_frames == 12
    args = _parse([*base, "--out", str(tmp_path / "w.pt"), "--run-windows", "24,6"])
    assert args.func(args) == 0
    cfg = load_refiner(tmp_path / "w.pt").config
    assert (cfg.window_frames, cfg.overlap_frames, cfg.keyframes) == (24, 6, (12, 16, 20))
