"""Decode throughput: vdp's batch iterator vs the ffmpeg CLI on the same 1080p H.264 clip.

Makes a 1920x1080 H.264 clip (the sam2 juggling clip upscaled, or ffmpeg's testsrc2 when the
test media is absent) in a temp folder, then times, with the same number of decoder threads:
    * ``vdp.io.iter_batches`` (TorchCodec, frames converted to RGB uint8 [T,3,H,W]), for
      several batch sizes: a batch above ~32 MB (5 frames at 1080p) is a fresh mmap that the
      kernel zero-fills on first touch, which shows up as system CPU time;
    * ``ffmpeg -threads N -i clip -f null -`` (decode only, no pixel conversion);
    * ``ffmpeg -threads N -i clip -pix_fmt rgb24 -f null -`` (decode + RGB, like vdp).
The CLI used is the system ffmpeg when present (same libavcodec TorchCodec loads), else the
imageio-ffmpeg binary. Best of ``--repeat`` interleaved runs.

Usage::

    python benchmarks/decode.py [--threads 1] [--frames 120] [--batch-frames 4,16] [--repeat 3]
"""
from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from vdp.io import iter_batches, probe
from vdp.io._ffmpeg import ffmpeg_exe

SOURCE = Path(__file__).resolve().parents[1] / "tests/resources/media/sam2__05_default_juggle.mp4"


def make_clip(folder: Path, frames: int) -> Path:
    out = folder / "clip_1080p.mp4"
    src = (["-i", str(SOURCE)] if SOURCE.exists()
           else ["-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30"])
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *src, "-frames:v", str(frames),
                    "-vf", "scale=1920:1080", "-c:v", "libx264", "-preset", "veryfast",
                    "-crf", "20", "-pix_fmt", "yuv420p", "-an", str(out)], check=True, timeout=600)
    return out


def time_vdp(path: Path, threads: int, batch_frames: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) to open and decode every frame."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in iter_batches(path, batch_frames=batch_frames, num_threads=threads):
        pass
    return time.perf_counter() - wall, time.process_time() - cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_cli(exe: str, path: Path, threads: int, rgb: bool) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the ffmpeg process) to decode every frame."""
    conv = ["-pix_fmt", "rgb24"] if rgb else []
    wall, cpu = time.perf_counter(), _children_cpu()
    subprocess.run([exe, "-v", "error", "-nostdin", "-threads", str(threads), "-i", str(path),
                    *conv, "-f", "null", "-"], check=True, timeout=600)
    return time.perf_counter() - wall, _children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="decoder threads (both sides)")
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--batch-frames", default="4,16",
                        help="comma-separated batch sizes to time vdp with")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(max(1, args.threads))
    exe = shutil.which("ffmpeg") or ffmpeg_exe()
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp), args.frames)
        info = probe(clip)
        sizes = [int(b) for b in args.batch_frames.split(",")]
        print(f"clip: {info.width}x{info.height} {info.codec} {info.num_frames} frames; "
              f"threads={args.threads}; cli={exe}")
        runs: dict[str, list[tuple[float, float]]] = {}
        for _ in range(args.repeat):  # interleaved, so load changes hit every variant alike
            for b in sizes:
                runs.setdefault(f"vdp iter_batches, batch_frames={b}", []).append(
                    time_vdp(clip, args.threads, b))
            runs.setdefault("ffmpeg -f null (decode only)", []).append(
                time_cli(exe, clip, args.threads, False))
            runs.setdefault("ffmpeg -pix_fmt rgb24 -f null", []).append(
                time_cli(exe, clip, args.threads, True))
    n = info.num_frames
    # Wall-clock fps and CPU-time fps (frames per CPU-second of the decoding process), best
    # run each; CPU fps is the fairer comparison on a shared, loaded machine.
    fps = {k: (n / min(w for w, _ in v), n / min(c for _, c in v)) for k, v in runs.items()}
    print(f"{'':36s} {'wall fps':>9s} {'cpu fps':>9s}")
    for k, (wall, cpu) in fps.items():
        print(f"{k:36s} {wall:9.1f} {cpu:9.1f}")
    ref_wall, ref_cpu = fps["ffmpeg -pix_fmt rgb24 -f null"]
    for b in sizes:
        wall, cpu = fps[f"vdp iter_batches, batch_frames={b}"]
        print(f"ratio vdp(batch_frames={b}) / ffmpeg rgb24: wall {wall / ref_wall:.2f}, "
              f"cpu {cpu / ref_cpu:.2f}")


if __name__ == "__main__":
    main()
