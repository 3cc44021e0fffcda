"""`vdp serve` (the gateway) and the commands that talk to one: submit, status, wait, cancel,
download. The client commands need only the SDK (no torch, no Ray).

Gateway address and token come from ``--url`` / ``--token`` or ``VDP_URL`` / ``VDP_API_TOKEN``.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vdp.errors import SpecError

DEFAULT_URL = "http://127.0.0.1:8000"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``serve``, ``submit``, ``status``, ``wait``, ``cancel`` and ``download``."""
    serve = subparsers.add_parser("serve", help="run the REST gateway (FastAPI + Ray)")
    _serve_args(serve)
    serve.set_defaults(func=_cmd_serve)

    submit = subparsers.add_parser("submit", help="submit a job to a gateway")
    _client_args(submit)
    submit.add_argument("input", help="local video file (uploaded) or, with --remote, a path under "
                                      "the gateway's input roots or upload:<id>")
    submit.add_argument("--preset", help="named preset on the gateway (see GET /v1/presets)")
    submit.add_argument("--spec", help="job spec file (JSON or YAML)")
    submit.add_argument("--remote", action="store_true",
                        help="INPUT names a file on the gateway's side; do not upload")
    submit.add_argument("--max-frames", type=int, help="process only the first N frames")
    submit.add_argument("--synthetic-weights", action="store_true",
                        help="deterministic synthetic weights (pipeline test: NOT real depth/alpha)")
    submit.add_argument("--wait", action="store_true", help="follow the job until it finishes")
    submit.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds")
    submit.set_defaults(func=_cmd_submit)

    status = subparsers.add_parser("status", help="show a job's state and progress")
    _client_args(status)
    status.add_argument("job_id")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(func=_cmd_status)

    wait = subparsers.add_parser("wait", help="follow a job's progress until it finishes")
    _client_args(wait)
    wait.add_argument("job_id")
    wait.add_argument("--timeout", type=float, help="give up after this many seconds")
    wait.set_defaults(func=_cmd_wait)

    cancel = subparsers.add_parser("cancel", help="cancel a job")
    _client_args(cancel)
    cancel.add_argument("job_id")
    cancel.set_defaults(func=_cmd_cancel)

    download = subparsers.add_parser("download", help="download a finished job's outputs")
    _client_args(download)
    download.add_argument("job_id")
    download.add_argument("--out", help="local folder (default vdp_out/<job id>)")
    download.add_argument("--name", action="append", dest="names",
                          help="only this output (repeatable; default all)")
    download.set_defaults(func=_cmd_download)


def _serve_args(p: argparse.ArgumentParser) -> None:
    from vdp.service.server import add_serve_args

    add_serve_args(p)


def _client_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=os.environ.get("VDP_URL", DEFAULT_URL),
                   help=f"gateway address (default VDP_URL or {DEFAULT_URL})")
    p.add_argument("--token", default=None, help="bearer token (default VDP_API_TOKEN)")


def _client(args: argparse.Namespace):
    from vdp.client import Client

    return Client(args.url, token=args.token or os.environ.get("VDP_API_TOKEN") or None)


# -- commands ---------------------------------------------------------------------------------


def _cmd_serve(args: argparse.Namespace) -> int:
    from vdp.service.server import run_serve

    return run_serve(args)


def _cmd_submit(args: argparse.Namespace) -> int:
    if bool(args.preset) == bool(args.spec):
        raise SpecError("give exactly one of --preset NAME or --spec FILE")
    spec = None
    if args.spec:
        from vdp.spec import read_spec_file

        spec = read_spec_file(Path(args.spec))
    overrides: dict = {}
    if args.max_frames is not None:
        overrides["max_frames"] = args.max_frames
    if args.synthetic_weights:
        overrides["stages"] = _synthetic_stages(args.preset, spec)
    source = args.input if args.remote else Path(args.input)
    with _client(args) as client:
        job = client.submit(source, preset=args.preset, spec=spec, overrides=overrides)
        print(job.id)
        if args.wait:
            return _follow(job, args.timeout)
    return 0


def _synthetic_stages(preset: str | None, spec: dict | None) -> dict:
    from vdp.spec import load_preset, with_synthetic_weights

    return with_synthetic_weights(load_preset(preset) if preset else spec or {})["stages"]


def _cmd_status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        status = client.job(args.job_id).last_status
    if args.json:
        print(status.model_dump_json(indent=2))
    else:
        print(_describe(status))
    return 0


def _cmd_wait(args: argparse.Namespace) -> int:
    with _client(args) as client:
        return _follow(client.job(args.job_id), args.timeout)


def _cmd_cancel(args: argparse.Namespace) -> int:
    with _client(args) as client:
        status = client.job(args.job_id).cancel()
    print(f"{status.id}: {'cancel requested' if status.state == 'running' else status.state}")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    out = Path(args.out or Path("vdp_out") / args.job_id)
    with _client(args) as client:
        paths = client.job(args.job_id).download(out, names=args.names)
    for p in paths:
        print(p)
    return 0


# -- helpers ----------------------------------------------------------------------------------


def _follow(job, timeout_s: float | None) -> int:
    """Print progress lines until the job finishes; exit code 0 only when it succeeded."""
    last_line = ""
    for status in job.events(timeout_s=timeout_s):
        line = _describe(status)
        if line != last_line:
            print(line, file=sys.stderr, flush=True)
            last_line = line
    final = job.last_status
    if final is not None and final.state == "succeeded":
        print(f"{final.id}: succeeded; outputs: {', '.join(final.outputs) or 'none'}")
        return 0
    return 1


def _describe(status) -> str:
    parts = [f"{status.id}: {status.state}"]
    if status.cancel_requested and status.state == "running":
        parts.append("(cancelling)")
    for p in status.progress:
        total = "?" if p.frames_total is None else str(p.frames_total)
        eta = "" if p.eta_seconds is None or status.done else f", eta {p.eta_seconds:.0f} s"
        parts.append(f"{p.stage} {p.frames_done}/{total} ({p.fps:.1f} fps{eta})")
    if status.error:
        parts.append(f"- {status.error}")
    return "  ".join(parts)

