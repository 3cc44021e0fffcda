"""Engine overhead and memory: a chunk run on Ray vs LocalRunner, and peak RSS for a clip vs the clip x10.

Run: ``python benchmarks/engine.py [--frames N] [--input-size N] [--threads N]``

Throughput
    The same stage (Video Depth Anything vits, synthetic weights, ``--input-size``) on the same
    pre-decoded frames, in this process (`LocalRunner`) and as one chunk on one Ray actor (the
    `ChunkScheduler` jobs use, model loaded before timing). Ratio = Ray fps / local fps: the cost of the object store and the
    actor calls.
Memory
    A whole job (`run_job` on Ray: decode, depth, ``--outputs``) on a
    short clip and on the same clip concatenated 10 times (ffmpeg concat demuxer, ``-c copy``),
    each in a fresh process with a fresh actor; peak RSS (``VmHWM``) of the driver and of the
    actor. Ratio = x10 / x1: memory must not grow with video length.

Synthetic weights: the numbers measure speed and memory only.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / "tests" / "resources" / "media" / "decord__flipping_a_pancake.mkv"  # 426x240


def depth_plan(input_size: int):
    from vdp.engine.plan import StagePlan
    from vdp.spec import DepthSpec
    from vdp.stages.depth import DepthStage

    spec = DepthSpec(model="vits", input_size=input_size, synthetic_weights=True)
    return StagePlan("depth", f"bench-{input_size}", partial(DepthStage, spec))


def throughput(frames: int, input_size: int, threads: int) -> dict[str, float]:
    """Frames per second of LocalRunner and of one chunk on the ChunkScheduler over the same
    decoded frames."""
    import ray
    import torch

    from vdp.engine.local import LocalRunner
    from vdp.io import iter_batches, probe

    torch.set_num_threads(threads)
    info = probe(CLIP)
    batches = list(iter_batches(CLIP, batch_frames=16, stop_frame=frames))
    plan = depth_plan(input_size)
    local = LocalRunner([plan])
    local.setup()
    t0 = time.perf_counter()
    local.run(iter(batches), info, lambda b: None)
    local_s = time.perf_counter() - t0
    ray.init(address="local", num_cpus=threads + 1, include_dashboard=False, logging_level="ERROR",
             namespace="vdp")
    try:
        ray_s = _one_chunk_on_ray(plan, batches, info, threads)
    finally:
        ray.shutdown()
    return {"frames": frames, "local_fps": frames / local_s, "ray_fps": frames / ray_s,
            "ratio": local_s / ray_s}


def _one_chunk_on_ray(plan, batches: list, info, threads: int) -> float:
    """Seconds the ChunkScheduler takes to run `batches` as one chunk (actor loaded first)."""
    from vdp.engine.assembly import Assembler, FrameReader
    from vdp.engine.chunks import plan_chunks
    from vdp.engine.ledger import ChunkStore, Ledger
    from vdp.engine.merge import ChunkMerger
    from vdp.engine.placement import acquire_replicas
    from vdp.engine.scheduler import ChunkScheduler
    from vdp.spec import ChunkingSpec, ResourcesSpec

    replicas, _, _ = acquire_replicas([plan], ResourcesSpec(device="cpu"), max_replicas=1,
                                      threads=threads, timeout_s=600)
    frames = sum(len(b) for b in batches)
    chunks = plan_chunks(frames, ChunkingSpec())
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(Path(tmp) / "ledger.jsonl")
        merger = ChunkMerger(chunks, {}, lambda b: None)
        assembler = Assembler(chunks, merger, ChunkStore(Path(tmp) / "chunks"), ledger,
                              FrameReader(str(CLIP)), persist=False)
        scheduler = ChunkScheduler([plan], replicas, ledger=ledger, max_in_flight=4)
        t0 = time.perf_counter()
        scheduler.run(chunks, {}, assembler, lambda c: iter(batches), info)
        merger.finish()
        return time.perf_counter() - t0


def peak_rss_of_job(clip: str, input_size: int, threads: int, outputs: list[str]) -> dict:
    """Runs in a child process: one job on Ray, then the peak RSS of this driver and its actor."""
    import torch

    from vdp.engine.cluster import ensure_ray
    from vdp.engine.job import run_job
    from vdp.spec import JobSpec

    torch.set_num_threads(threads)
    ensure_ray(num_cpus=threads + 1, num_gpus=0)
    spec = JobSpec.parse({"input": clip, "stages": {"depth": {"model": "vits", "input_size": input_size,
                                                               "synthetic_weights": True}},
                          "outputs": [{"kind": k} for k in outputs],
                          "resources": {"threads": threads, "device": "cpu"}})
    with tempfile.TemporaryDirectory() as out:
        report = run_job(spec, out)
    actor_pid = report.placement["replicas"]["depth"][0]["pid"]
    me = _status_mb(os.getpid())
    actor = _status_mb(actor_pid)
    return {"frames": report.frames, "seconds": report.wall_seconds,
            "driver_peak_mb": me["VmHWM"], "actor_peak_mb": actor["VmHWM"],
            "driver_anon_mb": me["RssAnon"], "driver_shmem_mb": me["RssShmem"],
            "actor_anon_mb": actor["RssAnon"], "actor_shmem_mb": actor["RssShmem"]}


def _status_mb(pid: int) -> dict[str, float]:
    """Peak RSS (VmHWM) and the current private (RssAnon) and shared-memory (RssShmem: mapped
    object-store pages) resident sizes of a process, in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("VmHWM", "RssAnon", "RssShmem"):
            out[key] = int(line.split()[1]) / 1024
    return out


def make_clips(workdir: Path, seconds: float) -> tuple[Path, Path]:
    """A short re-encoded piece of CLIP, and that piece 10 times over (concat, stream copy)."""
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    base = workdir / "base.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(CLIP), "-t", str(seconds), "-an",
                    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(base)], check=True)
    listing = workdir / "list.txt"
    listing.write_text("".join(f"file '{base}'\n" for _ in range(10)))
    x10 = workdir / "x10.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing),
                    "-c", "copy", str(x10)], check=True)
    return base, x10


def memory(input_size: int, threads: int, seconds: float, outputs: list[str]) -> dict[str, dict]:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, clip in zip(("x1", "x10"), make_clips(Path(tmp), seconds)):
            proc = subprocess.run([sys.executable, __file__, "--rss-of", str(clip), "--input-size",
                                   str(input_size), "--threads", str(threads),
                                   "--outputs", ",".join(outputs)],
                                  capture_output=True, text=True, check=True)
            out[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=96, help="frames for the throughput run")
    parser.add_argument("--input-size", type=int, default=56)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (driver and actor)")
    parser.add_argument("--clip-seconds", type=float, default=4.0, help="length of the x1 clip")
    parser.add_argument("--outputs", default="depth_npz",
                        help="output kinds of the memory runs (comma-separated, may be empty)")
    parser.add_argument("--rss-of", help=argparse.SUPPRESS)
    args = parser.parse_args()
    outputs = [k for k in args.outputs.split(",") if k]
    if args.rss_of:
        print(json.dumps(peak_rss_of_job(args.rss_of, args.input_size, args.threads, outputs)))
        return
    tp = throughput(args.frames, args.input_size, args.threads)
    print(f"\nthroughput: VDA vits (synthetic) input {args.input_size}, {tp['frames']} frames "
          f"of {CLIP.name}, {args.threads} thread(s)")
    print(f"{'runner':<12}{'fps':>10}")
    print(f"{'local':<12}{tp['local_fps']:>10.2f}")
    print(f"{'ray':<12}{tp['ray_fps']:>10.2f}")
    print(f"ratio ray/local: {tp['ratio']:.3f}")
    mem = memory(args.input_size, args.threads, args.clip_seconds, outputs)
    print(f"\npeak RSS of a whole job (Ray; outputs: {', '.join(outputs) or 'none'})")
    print("(peak = VmHWM; at the end: anon = private memory, shm = mapped object-store pages)")
    print(f"{'clip':<6}{'frames':>8}{'seconds':>10}{'driver peak':>13}{'anon':>7}{'shm':>6}"
          f"{'actor peak':>12}{'anon':>7}{'shm':>6}")
    for name, m in mem.items():
        print(f"{name:<6}{m['frames']:>8}{m['seconds']:>10.1f}{m['driver_peak_mb']:>13.0f}"
              f"{m['driver_anon_mb']:>7.0f}{m['driver_shmem_mb']:>6.0f}{m['actor_peak_mb']:>12.0f}"
              f"{m['actor_anon_mb']:>7.0f}{m['actor_shmem_mb']:>6.0f}")
    for who in ("driver", "actor"):
        print(f"ratio x10/x1 {who}: {mem['x10'][f'{who}_peak_mb'] / mem['x1'][f'{who}_peak_mb']:.3f}")


if __name__ == "__main__":
    main()
