"""`vdp run` options for creators: output naming and overwriting, stereo and encoding controls.

Every flag maps onto a JobSpec field and is validated by the spec, so a value outside the
spec's range fails with the same message a spec file would (``stages.stereo.divergence: ...``).
"""
from __future__ import annotations

import argparse
import json
from typing import Any

from vdp.errors import SpecError

#: flag -> (stage, field) of a stage option.
STAGE_FLAGS = {
    "divergence": ("stereo", "divergence"),
    "convergence": ("stereo", "convergence"),
    "ipd_offset": ("stereo", "ipd_offset"),
    "input_size": ("depth", "input_size"),
}
#: flag -> field of every output.
OUTPUT_FLAGS = {"crf": "crf", "encoder": "encoder"}


def seconds(text: str) -> float:
    """``"90"``, ``"1:30"`` or ``"0:01:30.5"`` -> seconds."""
    try:
        parts = [float(p) for p in text.split(":")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (seconds or [HH:]MM:SS[.ms])") from None
    if len(parts) > 3 or any(p < 0 for p in parts):
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (seconds or [HH:]MM:SS[.ms])")
    total = 0.0
    for p in parts:
        total = total * 60 + p
    return total


def audio_track(text: str) -> int | str:
    """``"1"`` -> 1, ``"none"`` -> ``"none"`` (the spec checks the range)."""
    if text.strip().lower() == "none":
        return "none"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an audio track: {text!r} (a number or 'none')") from None


def add_arguments(run: argparse.ArgumentParser) -> None:
    """Add the creator options to the ``run`` subcommand's parser."""
    g = run.add_argument_group("outputs and stereo")
    g.add_argument("--overwrite", action="store_true",
                   help="replace outputs already in the output folder (otherwise the run refuses)")
    g.add_argument("--names", choices=["input", "kind"], default=None,
                   help="'input' (default): outputs start with the input's name "
                        "(clip_LRF_Full_SBS.mp4); 'kind': depth.npz, stereo_LRF_Full_SBS.mp4, ...")
    g.add_argument("--divergence", type=float, help="stereo: total disparity in %% of the width (0-10]")
    g.add_argument("--convergence", type=float,
                   help="stereo: depth at the screen plane, 0 nearest .. 1 farthest")
    g.add_argument("--ipd-offset", type=float, metavar="PCT",
                   help="stereo: parallax added to the whole scene in %% of the width, as iw3's IPD "
                        "offset (-10..20; positive: toward the viewer; default 0)")
    g.add_argument("--input-size", type=int, help="depth: shorter side fed to the network (28-2044)")
    g.add_argument("--crf", type=int, help="quality of every lossy video output (0-51, lower is better)")
    t = run.add_argument_group("time and size")
    t.add_argument("--start", type=seconds, metavar="TIME", help="start at TIME (seconds or [HH:]MM:SS[.ms])")
    t.add_argument("--end", type=seconds, metavar="TIME", help="end at TIME (seconds or [HH:]MM:SS[.ms])")
    t.add_argument("--target-fps", type=float, metavar="FPS", help="resample the input to FPS first")
    t.add_argument("--max-res", type=int, metavar="PX",
                   help="downscale the input first so its longer side is at most PX")
    g.add_argument("--encoder", choices=["auto", "cpu", "x265", "nvenc"],
                   help="encoder of every MP4 output: auto (default: NVENC where it works, else "
                        "x264), cpu (x264, never NVENC), x265 (HEVC, ~half the size), nvenc (required)")
    g.add_argument("--fov", type=float, metavar="DEG",
                   help="horizontal field of view of the camera (3D outputs: EXR/PLY/VR180)")
    s = run.add_argument_group("streams (default: ffmpeg's picks)")
    s.add_argument("--video-stream", type=int, metavar="N",
                   help="use the input's N-th video stream (0: the first)")
    s.add_argument("--audio-stream", type=audio_track, metavar="N|none",
                   help="mux the input's N-th audio track (0: the first) into video outputs, or none")


def apply(spec: Any, args: argparse.Namespace) -> Any:
    """`spec` with the creator options of `args` applied (a new, validated JobSpec)."""
    from vdp.spec import JobSpec

    data = json.loads(spec.to_json())
    if args.names or "output_names" not in spec.model_fields_set:
        data["output_names"] = args.names or "input"
    if args.overwrite:
        data["overwrite"] = True
    for flag, (stage, field) in STAGE_FLAGS.items():
        value = getattr(args, flag, None)
        if value is None:
            continue
        if not data["stages"].get(stage):
            raise SpecError(f"--{flag.replace('_', '-')} sets stages.{stage}.{field}, but this job has "
                            f"no {stage} stage")
        data["stages"][stage][field] = value
    for flag, field in OUTPUT_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            for o in data["outputs"]:
                o[field] = value
    if args.fov is not None:
        data["camera"] = {"hfov_deg": args.fov}
    clip = {k: v for k, v in (("start_s", args.start), ("end_s", args.end), ("target_fps", args.target_fps),
                              ("max_res", args.max_res)) if v is not None}
    if clip:
        data["clip"] = {**(data.get("clip") or {}), **clip}
    streams = {k: v for k, v in (("video", getattr(args, "video_stream", None)),
                                 ("audio", getattr(args, "audio_stream", None))) if v is not None}
    if streams:
        data["streams"] = {**(data.get("streams") or {}), **streams}
    return JobSpec.parse(data)
