"""`vdp` command line: run jobs, probe videos, list presets (and the sub-tools' commands)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from vdp import __version__
from vdp.cli import batch, run_args
from vdp.errors import SpecError, VdpError


def _cmd_run(args: argparse.Namespace) -> int:
    from vdp.cli.display import ProgressDisplay
    from vdp.engine.job import run_job

    if args.resume:
        return _resume(args)
    if not args.input:
        raise SpecError("give an input video (or --resume OUT_DIR to continue an interrupted job)")
    if bool(args.preset) == bool(args.spec):
        raise SpecError("give exactly one of --preset NAME or --spec FILE (see `vdp presets`)")
    videos = batch.expand_inputs(args.input)
    if videos is not None:
        _build_spec(args, str(videos[0]))  # bad flags or spec: fail before the first job
        summary = batch.run_batch(videos, Path(args.out or "vdp_out"), lambda i: _build_spec(args, i),
                                  local=args.local, progress_factory=ProgressDisplay)
        print(f"\nbatch: {summary['succeeded']} of {summary['videos']} videos succeeded; summary in "
              f"{Path(args.out or 'vdp_out').resolve() / batch.SUMMARY_NAME}")
        return 0 if summary["failed"] == 0 else 1
    spec = _build_spec(args, args.input)
    out = Path(args.out or Path("vdp_out") / Path(args.input).stem)
    print(f"vdp: {args.input} -> {out}/ ({'local' if args.local else 'ray'}, stages: "
          f"{', '.join(spec.stages.enabled()) or 'none'})", file=sys.stderr)
    report = run_job(spec, out, local=args.local, progress=ProgressDisplay())
    _print_summary(report, out)
    return 0


def _build_spec(args: argparse.Namespace, video: str):
    """The JobSpec of one input video from the preset or spec file and the flags."""
    from vdp.spec import JobSpec, with_synthetic_weights

    overrides = {"input": video, "max_frames": args.max_frames}
    spec = (JobSpec.from_preset(args.preset, **overrides) if args.preset
            else JobSpec.from_file(args.spec, **overrides))
    spec = run_args.apply(spec, args)
    if args.synthetic_weights:
        spec = JobSpec.parse(with_synthetic_weights(json.loads(spec.to_json())))
    if args.device:
        spec.resources.device = args.device
    return spec


def _resume(args: argparse.Namespace) -> int:
    """``vdp run --resume OUT``: the job in OUT/spec.json, continued from its ledger."""
    from vdp.cli.display import ProgressDisplay
    from vdp.engine.job import run_job
    from vdp.spec import JobSpec

    clashing = [f"--{n.replace('_', '-')}" for n in ("preset", "spec", "out", "max_frames", "device")
                if getattr(args, n)] + (["--synthetic-weights"] if args.synthetic_weights else [])
    if args.input or clashing:
        raise SpecError(f"--resume continues the job saved in OUT_DIR/spec.json; drop "
                        f"{', '.join(([args.input] if args.input else []) + clashing)}")
    out = Path(args.resume)
    if not (out / "spec.json").is_file():
        raise SpecError(f"{out} has no spec.json: nothing to resume there")
    spec = JobSpec.from_file(out / "spec.json")
    print(f"vdp: resuming {spec.input} -> {out}/ ({'local' if args.local else 'ray'})", file=sys.stderr)
    report = run_job(spec, out, local=args.local, progress=ProgressDisplay(), resume=True)
    _print_summary(report, out)
    return 0


def _print_summary(report, out: Path) -> None:
    print(f"\ndone: {report.frames} frames in {report.wall_seconds:.1f} s "
          f"({report.frames / max(report.wall_seconds, 1e-9):.2f} fps end to end)")
    for name, s in report.stages.items():
        print(f"  {name:<8} {s['frames_done']:>7} frames  busy {s['busy_seconds']:8.2f} s")
    for w in report.warnings:
        print(f"  warning: {w}")
    for f in report.fallbacks:
        print(f"  fallback: {f}")
    print(f"outputs in {out.resolve()}/:")
    for name in [*report.outputs, "spec.json", "report.json"]:
        print(f"  {name}")


def _cmd_probe(args: argparse.Namespace) -> int:
    # ffprobe's packet listing gives the library's fields without importing torch (~3 s); the
    # library probe answers whatever that path cannot (and raises its errors)
    from vdp.io.quick_probe import quick_probe

    choice = {"video_stream": args.video_stream, "audio_stream": args.audio_stream}
    info = quick_probe(args.input, **choice)
    if info is None:
        from vdp.io import probe

        info = probe(args.input, **choice).to_dict()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:>17}: {v}")
    return 0


def _add_probe_parser(sub) -> None:
    probe = sub.add_parser("probe", help="show a video's metadata")
    probe.add_argument("input")
    probe.add_argument("--json", action="store_true", help="print JSON")
    probe.add_argument("--video-stream", type=int, metavar="N", help="the input's N-th video stream (0: the first)")
    probe.add_argument("--audio-stream", type=run_args.audio_track, metavar="N|none",
                       help="the input's N-th audio track (0: the first), or none")
    probe.set_defaults(func=_cmd_probe)


def _cmd_presets(args: argparse.Namespace) -> int:
    from vdp.spec import list_presets

    for name, desc in list_presets().items():
        print(f"{name:<14} {desc}")
    if args.catalog:
        from vdp import catalog

        print("\nstages (in pipeline order):")
        for s in catalog.stages():
            needs = f"needs {', '.join(s.requires)}; " if s.requires else ""
            print(f"  {s.name:<12} {needs}produces {', '.join(s.produces)}")
        print("\noutput kinds:")
        for o in catalog.outputs():
            print(f"  {o.kind:<18} {o.file_name:<26} needs {', '.join(o.needs):<12} {o.description}")
    return 0


def build_parser(probe_only: bool = False) -> argparse.ArgumentParser:
    """The `vdp` parser (`probe_only`: just ``vdp probe``, without importing the sub-tools'
    modules, some of which import torch)."""
    parser = argparse.ArgumentParser(prog="vdp", description="Depth, mattes and VR-ready media from videos.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    if probe_only:
        _add_probe_parser(sub)
        return parser

    run = sub.add_parser("run", help="run a job on a video")
    run.add_argument("input", nargs="?", help="input video file, or a folder or quoted glob of videos "
                                              "(a batch: one job per video into OUT/<name>/)")
    run.add_argument("--preset", help="named preset (see `vdp presets`)")
    run.add_argument("--spec", help="job spec file (JSON or YAML)")
    run.add_argument("--out", help="output directory (default vdp_out/<input name>)")
    run.add_argument("--local", action="store_true", help="run stages in this process, without Ray")
    run.add_argument("--max-frames", type=int, help="process only the first N frames")
    run.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override resources.device")
    run.add_argument("--synthetic-weights", action="store_true",
                     help="use deterministic synthetic weights (pipeline test: NOT real depth/alpha)")
    run.add_argument("--resume", metavar="OUT_DIR",
                     help="continue the interrupted job in OUT_DIR (its spec.json and ledger): "
                          "finished chunks are not run again")
    run_args.add_arguments(run)
    run.set_defaults(func=_cmd_run)

    _add_probe_parser(sub)

    presets = sub.add_parser("presets", help="list the named presets (and, with --catalog, the "
                                                 "stages and output kinds)")
    presets.add_argument("--catalog", action="store_true",
                         help="also list every stage and output kind with the layers they use")
    presets.set_defaults(func=_cmd_presets)

    from vdp.cli import actors, doctor, lift, models, refiner, service

    actors.add_parser(sub)
    doctor.add_parser(sub)
    lift.add_parser(sub)
    models.add_parser(sub)
    refiner.add_parser(sub)
    service.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `vdp` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(probe_only=argv[:1] == ["probe"]).parse_args(argv)
    try:
        return args.func(args)
    except SpecError as exc:
        print(f"vdp: error: {exc}", file=sys.stderr)
        return 2
    except VdpError as exc:
        if os.environ.get("VDP_DEBUG"):
            raise
        print(f"vdp: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("vdp: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
