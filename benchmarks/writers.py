"""CPU cost of each output writer per 1080p frame (the process's CPU plus its ffmpeg children's).

Frames: the juggle sample upscaled to 1920x1080; depth = the green channel as float32 (as the
GPU-speed simulation's stand-in produces), alpha = a soft matte from the luma and foreground =
the frames, both uint8 as the matte stage gives them (``--float-alpha``: alpha as float32 0..1,
which outputs must convert first; the figures before this option measured that); stereo
outputs get a pair made of the frame and the frame shifted 8 px (what the stereo stage would
give), and the point cloud reads the depth as metres.
Every output runs alone, batch by batch, through its `vdp.outputs` class, then closes (the
encoder's flush counts). The `depth_npz` row (a copy into an array file, no encoding) is the
in-run baseline the other rows are a ratio of.

    python benchmarks/writers.py                    # every depth and matte output, 48 frames
    python benchmarks/writers.py --frames 96 --kinds depth_color_mp4 foreground_webm
    python benchmarks/writers.py --before           # also the previous encoder settings
    python benchmarks/writers.py --frames 24 --kinds sbs_half vr180_sbs prores4444_mov
"""
from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import MEDIA  # noqa: E402
from vdp.host_memory import return_large_buffers  # noqa: E402
from vdp.io import iter_batches, probe  # noqa: E402
from vdp import catalog  # noqa: E402
from vdp.spec import OutputSpec  # noqa: E402
from vdp.types import FrameBatch, VideoInfo  # noqa: E402

CLIP = MEDIA / "sam2__05_default_juggle.mp4"
KINDS = ["depth_npz", "depth_png16", "depth_color_mp4", "alpha_mp4", "rgba_png", "composite_mp4",
         "foreground_webm"]
TARGET_MS = {"depth_color_mp4": 15, "depth_png16": 15, "foreground_webm": 45, "composite_mp4": 25}
# The settings before the cheap-writers change, for `--before` rows measured in the same run.
BEFORE = {"depth_color_mp4": {"preset": "veryfast"}, "composite_mp4": {"preset": "veryfast"},
          "alpha_mp4": {"preset": "veryfast"},
          "foreground_webm": {"vp9_deadline": "good", "vp9_speed": 4}}


FLOAT_ALPHA = [False]  # --float-alpha


def batches_1080p(frames: int, batch: int, stereo: bool = False) -> list[FrameBatch]:
    """`frames` frames of the sample at 1920x1080 with depth and alpha layers (and with
    `stereo` a stereo pair: the frame and the frame shifted 8 px), `batch` a batch."""
    out = []
    for b in iter_batches(CLIP, batch_frames=batch, stop_frame=frames):
        rgb = F.interpolate(b.frames.float(), size=(1080, 1920), mode="bilinear",
                            align_corners=False).round_().clamp_(0, 255).to(torch.uint8)
        luma = rgb.float().mean(1) / 255
        alpha = torch.sigmoid((luma - 0.45) * 12)
        if not FLOAT_ALPHA[0]:  # as the matte stage gives it (`vdp.stages.matte`): uint8
            alpha = alpha.mul(255).add_(0.5).to(torch.uint8)
        layers = {"depth": rgb[:, 1].float(), "alpha": alpha, "foreground": rgb}
        if stereo:
            layers["stereo"] = torch.stack([rgb, rgb.roll(-8, dims=-1)], dim=1)
        out.append(FrameBatch(frames=rgb, indices=b.indices, pts_seconds=b.pts_seconds, layers=layers))
    return out


def cpu_s() -> float:
    """CPU seconds of this process and of its waited-for children (ffmpeg encoders)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def measure(kind: str, options: dict, batches: list[FrameBatch], info: VideoInfo, tmp: Path) -> dict:
    """CPU and wall ms per frame of one output writing every batch and closing."""
    spec = OutputSpec(kind=kind, **options)
    n = sum(len(b) for b in batches)
    entry = catalog.output(kind)
    out = entry.output_class()(spec, tmp / kind, info, num_frames=n,
                               depth_kind=entry.depth_kind or "relative")
    c0, t0 = cpu_s(), time.perf_counter()
    for b in batches:
        out.write(b)
    out.close()
    cpu, wall = (cpu_s() - c0) * 1000 / n, (time.perf_counter() - t0) * 1000 / n
    size = sum(p.stat().st_size for p in (tmp / kind).rglob("*")) if (tmp / kind).is_dir() \
        else (tmp / kind).stat().st_size
    shutil.rmtree(tmp / kind, ignore_errors=True) if (tmp / kind).is_dir() else (tmp / kind).unlink()
    encoder = getattr(getattr(out, "writer", None), "encoder_used", None)
    return {"cpu_ms": cpu, "wall_ms": wall, "kb_per_frame": size / 1024 / n, "encoder": encoder}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=48)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--kinds", nargs="+", default=KINDS, choices=sorted(e.kind for e in catalog.outputs()))
    p.add_argument("--before", action="store_true", help="also run the previous encoder settings")
    p.add_argument("--repeat", type=int, default=1, help="runs per row; the lowest CPU counts")
    p.add_argument("--float-alpha", action="store_true",
                   help="alpha as float32 0..1 instead of the matte stage's uint8")
    args = p.parse_args()
    FLOAT_ALPHA[0] = args.float_alpha
    return_large_buffers()  # the malloc settings of a job's writing process (`vdp.engine.job`)

    batches = batches_1080p(args.frames, args.batch,
                            stereo=any("stereo" in catalog.output(k).needs for k in args.kinds))
    n = sum(len(b) for b in batches)
    src = probe(CLIP)
    info = VideoInfo(path=str(CLIP), num_frames=n, fps=src.fps, duration_seconds=n / src.fps,
                     width=1920, height=1080, codec="h264")
    rows = [(k, {}) for k in args.kinds]
    if args.before:
        rows += [(k, BEFORE[k]) for k in args.kinds if k in BEFORE]
    if "depth_npz" not in args.kinds:
        rows.insert(0, ("depth_npz", {}))
    with tempfile.TemporaryDirectory(prefix="vdp_writers_") as d:
        measure("depth_npz", {}, batches[:1], info, Path(d))  # warm-up: imports, thread pools
        results = []
        for kind, opts in rows:
            runs = [measure(kind, opts, batches, info, Path(d)) for _ in range(args.repeat)]
            results.append((kind, opts, min(runs, key=lambda r: r["cpu_ms"])))
    base = results[0][2]["cpu_ms"]
    print(f"{n} frames at 1920x1080, batches of {args.batch}, torch threads {torch.get_num_threads()}")
    print(f"{'output':<18} {'settings':<36} {'CPU ms/frame':>12} {'x npz':>7} {'wall ms':>8} "
          f"{'KiB/frame':>9} {'target':>7}  encoder")
    for kind, opts, r in results:
        settings = ", ".join(f"{k}={v}" for k, v in opts.items()) or "defaults"
        target = f"<= {TARGET_MS[kind]}" if kind in TARGET_MS and not opts else ""
        print(f"{kind:<18} {settings:<36} {r['cpu_ms']:>12.1f} {r['cpu_ms'] / base:>7.1f} "
              f"{r['wall_ms']:>8.1f} {r['kb_per_frame']:>9.1f} {target:>7}  {r['encoder'] or ''}")


if __name__ == "__main__":
    main()
