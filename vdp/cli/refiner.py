"""`vdp refiner train` and `vdp refiner eval`: reproduce and check the temporal refiner."""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from vdp.errors import SpecError


def _cmd_train(args: argparse.Namespace) -> int:
    from vdp.refiner.train import TrainConfig, train

    cfg = TrainConfig()
    overrides = {k: getattr(args, k) for k in ("preset", "steps", "batch", "seed", "threads", "timeout_s",
                                               "data", "height", "width", "pool_clips", "lr",
                                               "data_workers", "select_every")
                 if getattr(args, k) is not None}
    if args.init is not None:
        overrides["init"] = args.init
    if args.families is not None:
        cfg = replace(cfg, sampling=replace(cfg.sampling, families=tuple(
            f.strip() for f in args.families.split(",") if f.strip())))
    if args.harm is not None:
        cfg = replace(cfg, loss=replace(cfg.loss, harm=args.harm))
    if args.reprojection is not None:
        cfg = replace(cfg, loss=replace(cfg.loss, reprojection=args.reprojection))
    if args.run_windows is not None:
        overrides["run_windows"] = _run_windows(args.run_windows)
    cfg = replace(cfg, **overrides)
    if cfg.steps < 1 or cfg.batch < 1 or cfg.threads < 1:
        raise SpecError("--steps, --batch and --threads must be at least 1")
    if cfg.select_every < 0:
        raise SpecError("--select-every must be >= 0 (0: save the last weights)")
    out = Path(args.out)
    command = "vdp refiner " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if args.record_argv \
        else None
    train(cfg, out, log=lambda s: print(s, flush=True), command=command)
    if not args.no_eval:
        from vdp.refiner.evaluate import evaluate, format_table

        results = evaluate(out, log=lambda s: print(s, flush=True))
        print(format_table(results))
        side = out.with_suffix(".json")
        data = json.loads(side.read_text())
        data["metrics"] = results
        side.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return 0


def _run_windows(text: str) -> tuple[int, int] | None:
    """``--run-windows``: ``FRAMES,OVERLAP`` or ``training`` (None)."""
    if text == "training":
        return None
    try:
        frames, overlap = (int(v) for v in text.split(","))
    except ValueError:
        raise SpecError(f"--run-windows takes FRAMES,OVERLAP (e.g. 32,8) or 'training', got {text!r}") from None
    return frames, overlap


def _cmd_eval(args: argparse.Namespace) -> int:
    from vdp.refiner.evaluate import evaluate, format_table
    from vdp.refiner.families import FAMILIES

    compare = {}
    for item in args.compare or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise SpecError(f"--compare takes NAME=CHECKPOINT, got {item!r}")
        compare[name] = path
    if args.max_frame_shift is not None and not 0 <= args.max_frame_shift <= 0.2:
        raise SpecError(f"--max-frame-shift must be in [0, 0.2], got {args.max_frame_shift}")
    families = list(FAMILIES) if args.family == "all" else [args.family]
    if args.data != "synthetic" and args.family != "classic":
        raise SpecError("--family applies to procedural data only (--data synthetic)")
    all_results, passed = {}, True
    for family in families:
        results = evaluate(args.checkpoint, data=args.data, test_count=args.test,
                           val_count=args.val, frames=args.frames, height=args.height,
                           width=args.width, oracle=not args.no_oracle, family=family,
                           compare=compare, max_frame_shift=args.max_frame_shift,
                           log=lambda s: print(s, file=sys.stderr, flush=True))
        if len(families) > 1:
            print(f"\n## teacher family: {family}\n")
        print(format_table(results), flush=True)
        all_results[family] = results
        passed = passed and results["bar"]["passed"]
    if args.json:
        data = all_results if len(families) > 1 else all_results[families[0]]
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    return 0 if passed or not args.require_pass else 1


def _presets() -> tuple[str, ...]:
    from vdp.models.refiner.config import PRESETS

    return tuple(PRESETS)


def _families() -> tuple[str, ...]:
    from vdp.refiner.families import FAMILIES

    return FAMILIES


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``refiner train`` and ``refiner eval`` on the main CLI's subparsers."""
    p = subparsers.add_parser("refiner", help="train or evaluate the SSM temporal refiner")
    sub = p.add_subparsers(dest="refiner_command", required=True)

    t = sub.add_parser("train", help="train a refiner (defaults = the shipped refiner_v1 recipe)",
                       description="Train on procedural scenes (or RGB-D sequences), save the "
                                   "checkpoint and a JSON with config, log and held-out metrics.")
    t.add_argument("--out", default="refiner_out/refiner_v1.pt", help="checkpoint path (.pt)")
    t.add_argument("--preset", choices=sorted(_presets()),
                   help="model size and inputs (v0: depth only; v1: depth and RGB)")
    t.add_argument("--steps", type=int, help="optimiser steps")
    t.add_argument("--batch", type=int, help="samples per step")
    t.add_argument("--lr", type=float, help="peak learning rate")
    t.add_argument("--seed", type=int, help="seed of initialisation and batches")
    t.add_argument("--threads", type=int, help="torch CPU threads")
    t.add_argument("--timeout-s", dest="timeout_s", type=float,
                   help="stop after this many seconds (still saves)")
    t.add_argument("--data", help="'synthetic' (default) or a folder of RGB-D sequences")
    t.add_argument("--height", type=int, help="training frame height")
    t.add_argument("--width", type=int, help="training frame width")
    t.add_argument("--pool-clips", dest="pool_clips", type=int, help="procedural clips to render")
    t.add_argument("--data-workers", dest="data_workers", type=int, choices=[0, 1],
                   help="processes building batches ahead of the optimiser (default 1)")
    t.add_argument("--init", help="start from this checkpoint (fine-tune) instead of random weights")
    t.add_argument("--families", help="comma-separated training teacher families (default: all "
                                      "training families)")
    t.add_argument("--harm", type=float, help="weight of the do-no-harm loss (frames made worse)")
    t.add_argument("--reprojection", type=float,
                   help="weight of the reprojection consistency loss (TAE's twin; needs poses)")
    t.add_argument("--select-every", dest="select_every", type=int,
                   help="score on validation clips every N steps and save the best weights "
                        "(TAE penalised by frames made worse than the teacher; default: last)")
    t.add_argument("--run-windows", dest="run_windows", metavar="FRAMES,OVERLAP",
                   help="windows the saved checkpoint runs on (default 32,8; 'training': the "
                        "preset's own, which training uses)")
    t.add_argument("--no-eval", action="store_true", help="skip the held-out evaluation")
    t.add_argument("--no-record-argv", dest="record_argv", action="store_false",
                   help="do not store the command line in the JSON")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("eval", help="held-out table: refiner vs teacher, EMA, bilateral and robust scan",
                       description="Evaluate on held-out procedural sequences (or RGB-D sequences) "
                                   "and print AbsRel, RMSE, δ1, flicker, TAE and the confidence strata.")
    e.add_argument("--checkpoint", help="refiner checkpoint (default: the shipped one)")
    e.add_argument("--data", default="synthetic", help="'synthetic' or a folder of RGB-D sequences")
    e.add_argument("--test", type=int, default=8, help="procedural test sequences")
    e.add_argument("--val", type=int, default=4, help="procedural validation sequences")
    e.add_argument("--frames", type=int, default=60, help="frames per sequence")
    e.add_argument("--height", type=int, default=96)
    e.add_argument("--width", type=int, default=128)
    e.add_argument("--no-oracle", action="store_true", help="skip the test-tuned baselines")
    e.add_argument("--family", default="classic", choices=[*_families(), "all"],
                   help="teacher family of the procedural sequences (all: one table each; "
                        "held-out families are never trained on)")
    e.add_argument("--compare", action="append", metavar="NAME=CHECKPOINT",
                   help="also report this checkpoint as row 'refiner NAME' (repeatable)")
    e.add_argument("--max-frame-shift", dest="max_frame_shift", type=float,
                   help="do-no-harm limit on each frame's median log-depth change for the refiner "
                        "rows (adds a row without it)")
    e.add_argument("--json", help="also write the results as JSON here")
    e.add_argument("--require-pass", action="store_true", help="exit 1 when the bar is not met")
    e.set_defaults(func=_cmd_eval)
    return p
