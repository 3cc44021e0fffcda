"""Peak memory of the depth preset against resolution: 1080p, 4K and 8K clips of a few frames.

Makes H.264 test-pattern clips (ffmpeg ``testsrc2``, ``--frames`` frames each) in a temp folder,
then runs ``vdp run CLIP --preset depth --local --synthetic-weights`` (depth input 518) on each in
a child process and reports its peak RSS (see `run_vdp`), the ratio to the 1080p figure and the
wall time. ``--outputs depth_npz`` limits the run to one output (the depth path alone) instead of
the preset's four (16-bit PNGs, NPZ, colour and side-by-side preview MP4s).

Targets (issue 17): 8K peak RSS <= 4 GB and <= 1.5x the 1080p figure.

Measured on the 2-core CPU dev machine (--frames 6, CPU, synthetic weights): preset outputs
1080p 2371 MB, 4K 2524 MB, 8K 3109 MB (1.31x: met). Before: 1080p 2593, 8K 4608 MB (1.78x); what
changed: malloc returns freed buffers from 16 MB up to the system (`vdp.host_memory`; ~300-550 MB
of freed activations stayed resident at every size), writers convert 8K batches a frame at a
time, decoded batches hold at most 2**26 pixels, and the colour video is at most 3840 px on its
long side by default (`max_side`; x265 alone held ~2 GB for a 7680x4320 stream whatever its
settings). Since a model computing on the CPU keeps what it frees for its next call on frames up
to 4K (`vdp.host_memory.reuse_freed_memory`, ~18% less wall time here): 1080p 3055 MB, 4K
3005 MB, 8K 3212 MB (1.05x: met). Since it also keeps them between calls and chunks (trimmed
after 2 s without a call): 1080p 3138-3144 MB, 4K 3297-3430 MB, 8K 3201-3212 MB in three runs
(one 8K run of four peaked at 4904 MB; the 8K path opens no such block, and it did not recur).

A longer clip holds more (``--frames 40``: 1080p 3097 MB, 4K 5298 MB, 8K 10180 MB): the offline
depth window keeps 32 full-resolution RGB frames until their depth is final and emits ~22 frames
of full-resolution float depth at once, and the 7680x2160 preview's x265 grows to ~1.8 GB.

Usage::

    python benchmarks/memory.py [--frames 6] [--sizes 1080p,4k,8k] [--outputs preset|depth_npz]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import run_vdp  # noqa: E402
from vdp.io._ffmpeg import ffmpeg_exe  # noqa: E402

SIZES = {"1080p": (1920, 1080), "4k": (3840, 2160), "8k": (7680, 4320)}


def make_clip(folder: Path, name: str, frames: int) -> Path:
    width, height = SIZES[name]
    out = folder / f"bars_{name}.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size={width}x{height}:rate=25", "-frames:v", str(frames),
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709",
                    str(out)], check=True, timeout=600)
    return out


def spec_file(folder: Path, outputs: str) -> list[str]:
    if outputs == "preset":
        return ["--preset", "depth"]
    spec = {"stages": {"depth": {"model": "vits", "input_size": 518}},
            "outputs": [{"kind": k} for k in outputs.split(",")]}
    path = folder / "spec.json"
    path.write_text(json.dumps(spec))
    return ["--spec", str(path)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--sizes", default="1080p,4k,8k")
    parser.add_argument("--outputs", default="preset", help="'preset' or comma-separated output kinds")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="vdp_memory_"))
    rows = []
    try:
        for name in args.sizes.split(","):
            clip = make_clip(folder, name, args.frames)
            result = run_vdp([str(clip), *spec_file(folder, args.outputs), "--local",
                              "--synthetic-weights"], threads=args.threads)
            shutil.rmtree(result["out"], ignore_errors=True)
            clip.unlink()
            rows.append((name, result["peak_rss_mb"], result["wall_s"]))
            base = rows[0][1]
            print(f"{name:>6} {SIZES[name][0]}x{SIZES[name][1]}: peak RSS {result['peak_rss_mb']:7.0f} MB"
                  f"  ({result['peak_rss_mb'] / base:.2f}x {rows[0][0]})  wall {result['wall_s']:.1f} s",
                  flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if rows and rows[-1][0] == "8k":
        peak = rows[-1][1]
        print(f"8K target: <= 4096 MB and <= 1.5x {rows[0][0]}: "
              f"{'met' if peak <= 4096 and peak <= 1.5 * rows[0][1] else 'NOT met'}")


if __name__ == "__main__":
    main()
