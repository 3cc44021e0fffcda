"""`vdp lift TRACKS --depth OUT_DIR`: 2D tracks (vdp JSON or MOT CSV) to camera-space XYZ.

Writes JSON (``--out``, default ``<tracks>_3d.json``): the depth used, the intrinsics, the
sampling options, every lifted detection (frame, id, type, u, v, x, y, z in metres, samples,
valid_fraction) and every skipped one with its reason; ``--csv`` also writes
``frame,id,x,y,z`` rows. The formats are described in `vdp.lift.tracks`.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``lift``."""
    p = subparsers.add_parser(
        "lift", help="lift 2D tracks (JSON or MOT CSV) to camera-space 3D with a job's metric depth",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tracks", help="tracks file: vdp JSON ({\"detections\": [{\"frame\", \"id\", \"box\"|"
                                  "\"point\"}]}) or MOT-challenge CSV")
    p.add_argument("--depth", required=True, metavar="OUT_DIR",
                   help="output folder of a job with metric depth (depth_exr or depth_npz)")
    p.add_argument("--depth-name", help="which depth output, when the folder holds several")
    p.add_argument("--out", help="result JSON (default <tracks>_3d.json)")
    p.add_argument("--csv", help="also write frame,id,x,y,z rows here")
    p.add_argument("--fov", type=float, metavar="DEG", help="horizontal FOV overriding the job's camera")
    p.add_argument("--image-size", metavar="WxH", help="size the track coordinates refer to "
                                                       "(default: the tracks file's, else the video's)")
    p.add_argument("--box-shrink", type=float, default=0.2,
                   help="fraction of a box moved in from each side before sampling (default 0.2)")
    p.add_argument("--point-radius", type=int, default=2, help="depth pixels around a point (default 2)")
    p.add_argument("--min-valid", type=float, default=0.25,
                   help="least fraction of valid depth samples (default 0.25)")
    p.set_defaults(func=_cmd_lift)


def _cmd_lift(args: argparse.Namespace) -> int:
    from vdp.errors import SpecError
    from vdp.lift.depth_source import open_depth
    from vdp.lift.lifting import LiftOptions, lift
    from vdp.lift.tracks import read_tracks

    if not 0 <= args.box_shrink < 0.5:
        raise SpecError(f"--box-shrink must be in [0, 0.5), got {args.box_shrink}")
    if not 0 <= args.min_valid <= 1 or args.point_radius < 0:
        raise SpecError("--min-valid must be in [0, 1] and --point-radius >= 0")
    size = None
    if args.image_size:
        try:
            w, h = (int(x) for x in args.image_size.lower().split("x"))
            size = (w, h)
        except ValueError:
            raise SpecError(f"--image-size must look like 1920x1080, got {args.image_size!r}") from None
    detections, file_size = read_tracks(args.tracks)
    depth = open_depth(args.depth, name=args.depth_name, fov_deg=args.fov)
    opts = LiftOptions(point_radius=args.point_radius, box_shrink=args.box_shrink, min_valid=args.min_valid)
    result = lift(detections, depth, size or file_size, opts)
    out = Path(args.out or Path(args.tracks).with_name(Path(args.tracks).stem + "_3d.json"))
    doc = {"tracks": str(args.tracks), "depth": str(depth.path), "intrinsics": depth.intrinsics.to_dict(),
           "options": vars(opts), "summary": result.summary(), "lifted": result.lifted,
           "skipped": result.skipped}
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    os.replace(tmp, out)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["frame", "id", "x", "y", "z"])
            for r in result.lifted:
                w.writerow([r["frame"], r["id"], f"{r['x']:.6f}", f"{r['y']:.6f}", f"{r['z']:.6f}"])
    s = result.summary()
    print(f"lifted {s['lifted']} of {s['lifted'] + s['skipped']} detections -> {out}")
    for reason, n in s["skipped_by_reason"].items():
        print(f"  skipped {n}: {reason}", file=sys.stderr)
    return 0
