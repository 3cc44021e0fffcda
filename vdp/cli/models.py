"""``vdp models list|fetch|verify``: the checkpoints vdp knows, downloading and checking them.

`add_parser` registers the command on the main CLI's subparsers; each subcommand sets
``func(args) -> exit code``.
"""
from __future__ import annotations

import argparse
import sys
from typing import TextIO

from vdp.errors import WeightsError
from vdp.models.fetch import fetch, read_sidecar, verify
from vdp.models.weights import CHECKPOINTS, model_dir


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``models`` and its subcommands on `subparsers`; returns the ``models`` parser."""
    parser = subparsers.add_parser("models", help="list, download and verify model checkpoints",
                                   description="Checkpoints live in $VDP_MODEL_DIR "
                                               "(default ~/.cache/vdp/models).")
    sub = parser.add_subparsers(dest="models_command", metavar="{list,fetch,verify}", required=True)

    p_list = sub.add_parser("list", help="known checkpoints: file, present or missing, licence")
    p_list.set_defaults(func=cmd_list)

    p_fetch = sub.add_parser("fetch", help="download checkpoints (needs network; Hub files go through huggingface_hub: its cache, resume, HF_ENDPOINT mirror, HF_TOKEN)")
    p_fetch.add_argument("names", nargs="+", choices=sorted(CHECKPOINTS), metavar="NAME",
                         help=f"one or more of: {', '.join(CHECKPOINTS)}")
    p_fetch.add_argument("--force", action="store_true", help="download even if the file is there")
    p_fetch.add_argument("--timeout-s", type=float, default=60.0,
                         help="seconds without data before giving up (default 60)")
    p_fetch.set_defaults(func=cmd_fetch)

    p_verify = sub.add_parser("verify", help="check digests and state-dict layouts of local checkpoints")
    p_verify.add_argument("names", nargs="*", metavar="NAME",
                          help="checkpoints to check (default: every one that is present)")
    p_verify.set_defaults(func=cmd_verify)
    return parser


def cmd_list(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print one row per checkpoint, then the licence warnings."""
    out = out or sys.stdout
    folder = model_dir()
    rows = [("NAME", "FILE", "STATUS", "LICENCE")]
    for c in CHECKPOINTS.values():
        path = folder / c.filename
        status = "present" if path.is_file() else "missing"
        if status == "present" and read_sidecar(path) is None:
            status = "present (no digest recorded)"
        rows.append((c.name, c.filename, status, c.licence))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    print(f"model directory: {folder}", file=out)
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip(), file=out)
    warnings = [c.licence_warning for c in CHECKPOINTS.values() if c.licence_warning]
    if warnings:
        print("\nlicence warnings:", file=out)
        for w in warnings:
            print(f"  {w}", file=out)
    return 0


def _progress_printer(name: str, err: TextIO):
    def show(done: int, total: int | None) -> None:
        mb = done / 1e6
        text = f"{mb:.1f}/{total / 1e6:.1f} MB ({100 * done / total:.0f}%)" if total else f"{mb:.1f} MB"
        print(f"\r{name}: {text}", end="", file=err, flush=True)
    return show


def cmd_fetch(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Download each named checkpoint; 1 if any failed."""
    out, err = out or sys.stdout, err or sys.stderr
    failed = 0
    for name in args.names:
        warning = CHECKPOINTS[name].licence_warning
        if warning:
            print(f"note: {warning}", file=err)
        try:
            path = fetch(name, progress=_progress_printer(name, err), timeout_s=args.timeout_s,
                         force=args.force)
        except WeightsError as exc:
            print(f"\nerror: {exc}", file=err)
            failed += 1
            continue
        print(f"\n{name}: {path}", file=out)
    return 1 if failed else 0


def cmd_verify(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Verify the named (or all present) checkpoints; 1 if any failed or none was found."""
    out, err = out or sys.stdout, err or sys.stderr
    names = args.names or [n for n, c in CHECKPOINTS.items() if (model_dir() / c.filename).is_file()]
    if not names:
        print(f"error: no checkpoints in {model_dir()}; get them with `vdp models fetch NAME`", file=err)
        return 1
    failed = 0
    for name in names:
        try:
            r = verify(name)
        except WeightsError as exc:
            print(f"{name}: FAILED: {exc}", file=err)
            failed += 1
            continue
        digest = "matches recorded digest" if r.recorded else "no digest recorded"
        layout = f"{r.num_keys} tensors match the expected layout" if r.layout_checked else "layout not checked"
        print(f"{name}: ok ({digest}; {layout}) sha256 {r.sha256}", file=out)
    return 1 if failed else 0
