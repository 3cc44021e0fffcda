"""Scaling of chunk-parallel jobs: 1 vs 2 replicas on CPU, and a GPU shared by fractional actors.

Run: ``python benchmarks/scaling.py [--frames N] [--input-size N] [--chunk-frames N]``

CPU (always)
    The same chunked job (Video Depth Anything vits, synthetic weights, one torch thread per
    actor, no outputs) with ``replicas: {depth: 1}`` and ``{depth: 2}`` on a local Ray
    instance; each is run once to load the actors, then timed. Efficiency =
    (fps with 2 / fps with 1) / 2: 1.0 is perfect scaling. It depends on free cores: on a
    machine whose cores are busy with other work it measures the contention too.
Latency-bound stage (always)
    The same job shape with a stage that only waits (``--wait-s`` per batch, like a GPU or a
    remote call: no CPU), 1, 2 and 4 replicas, chunks not kept for resume: what the scheduler
    itself scales to, on any machine. Ideal fps = frames / (batches of the busiest replica x
    wait); efficiency against that.
GPU (when torch sees CUDA)
    The bare model: `DepthStage` on ``cuda`` over the same frames in this process, one stream.
    vdp: the same frames as a chunked job on 1 GPU with two depth actors of 0.5 GPU each.
    Ratio = vdp fps / bare fps.

Synthetic weights: the numbers measure speed only.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / "tests" / "resources" / "media" / "decord__flipping_a_pancake.mkv"  # 426x240, 310 frames


def job(frames: int, input_size: int, chunk_frames: int, overlap: int, device: str, **resources):
    from vdp.spec import JobSpec

    return JobSpec.parse({
        "input": str(CLIP), "max_frames": frames,
        "stages": {"depth": {"model": "vits", "input_size": input_size, "synthetic_weights": True}},
        "outputs": [], "resources": {"device": device, "batch_frames": 16, **resources},
        "chunking": {"enabled": True, "chunk_frames": chunk_frames, "overlap_frames": overlap}})


def timed_job(spec) -> tuple[float, float, dict]:
    """Frames per second of a job whose actors are already loaded (one untimed run first), and
    the driver's CPU seconds per wall second (decode, merge, writes)."""
    import os

    from vdp.engine.job import run_job

    with tempfile.TemporaryDirectory() as out:
        run_job(spec, out)
    with tempfile.TemporaryDirectory() as out:
        t0, c0 = time.perf_counter(), sum(os.times()[:2])
        report = run_job(spec, out)
        seconds, cpu = time.perf_counter() - t0, sum(os.times()[:2]) - c0
    return report.frames / seconds, cpu / seconds, report.placement


def wait_stage(seconds: float):
    from vdp.stages.base import Stage

    class _Wait(Stage):
        name = "depth"

        def init_state(self, info):
            return None

        def process(self, batch, state):
            time.sleep(seconds)
            return batch, state

    return _Wait()


def latency_scaling(frames: int, chunk_frames: int, overlap: int, wait_s: float) -> dict[int, tuple[float, float]]:
    """fps and ideal fps with 1, 2 and 4 replicas of a stage that only waits."""
    import math
    from functools import partial

    import ray

    from vdp.engine.chunks import plan_chunks
    from vdp.engine.job import run_job
    from vdp.engine.placement import release_actors
    from vdp.engine.plan import StagePlan
    from vdp.spec import ChunkingSpec, JobSpec

    batch = 16
    chunks = plan_chunks(frames, ChunkingSpec(enabled=True, chunk_frames=chunk_frames, overlap_frames=overlap))
    batches = [math.ceil(c.run_frames / batch) for c in chunks]
    plans = [StagePlan("depth", f"wait{wait_s}", partial(wait_stage, wait_s))]
    ray.init(address="local", num_cpus=3, include_dashboard=False, logging_level="ERROR", namespace="vdp")
    out = {}
    try:
        for n in (1, 2, 4):
            release_actors()
            spec = JobSpec.parse({
                "input": str(CLIP), "max_frames": frames, "stages": {"depth": {}}, "outputs": [],
                "resources": {"device": "cpu", "batch_frames": batch, "replicas": {"depth": n}},
                "chunking": {"enabled": True, "chunk_frames": chunk_frames, "overlap_frames": overlap,
                             "resumable": False}})
            with tempfile.TemporaryDirectory() as d:
                run_job(spec, d, plans=plans)
            with tempfile.TemporaryDirectory() as d:
                t0 = time.perf_counter()
                run_job(spec, d, plans=plans)
                fps = frames / (time.perf_counter() - t0)
            # dynamic assignment at best: the busiest replica's share of the batches
            ideal = frames / (max(_greedy_split(batches, n)) * wait_s)
            out[n] = (fps, ideal)
        return out
    finally:
        ray.shutdown()


def _greedy_split(work: list[int], n: int) -> list[int]:
    """Loads of `n` workers that each take the next item when free (items in order)."""
    loads = [0] * n
    for w in work:
        loads[loads.index(min(loads))] += w
    return loads


def cpu_scaling(frames: int, input_size: int, chunk_frames: int, overlap: int) -> dict[int, tuple[float, float]]:
    import ray

    from vdp.engine.placement import release_actors

    ray.init(address="local", num_cpus=3, include_dashboard=False, logging_level="ERROR", namespace="vdp")
    try:
        out = {}
        for n in (1, 2):
            release_actors()
            spec = job(frames, input_size, chunk_frames, overlap, "cpu", threads=1, replicas={"depth": n})
            fps, driver_cpu, _ = timed_job(spec)
            out[n] = (fps, driver_cpu)
        return out
    finally:
        ray.shutdown()


def gpu_sharing(frames: int, input_size: int, chunk_frames: int, overlap: int) -> dict[str, float]:
    import ray
    import torch

    from vdp.engine.local import LocalRunner
    from vdp.engine.plan import StagePlan
    from vdp.io import iter_batches, probe
    from vdp.spec import DepthSpec
    from vdp.stages.depth import DepthStage

    spec = DepthSpec(model="vits", input_size=input_size, synthetic_weights=True)
    runner = LocalRunner([StagePlan("depth", "bare", lambda: DepthStage(spec))], device="cuda")
    runner.setup()
    batches = list(iter_batches(CLIP, batch_frames=16, stop_frame=frames))
    info = probe(CLIP)
    runner.run(iter(batches[:2]), info, lambda b: None)  # warm-up (kernels, allocator)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    runner.run(iter(batches), info, lambda b: None)
    torch.cuda.synchronize()
    bare = frames / (time.perf_counter() - t0)
    ray.init(address="local", num_gpus=1, include_dashboard=False, logging_level="ERROR", namespace="vdp")
    try:
        fps, _, placement = timed_job(job(frames, input_size, chunk_frames, overlap, "cuda",
                                       stage_gpus={"depth": 0.5}, replicas={"depth": 2}))
    finally:
        ray.shutdown()
    return {"bare_fps": bare, "vdp_fps": fps, "ratio": fps / bare,
            "devices": sorted({r["device"] for r in placement["replicas"]["depth"]})}


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=128)
    parser.add_argument("--input-size", type=int, default=56)
    parser.add_argument("--chunk-frames", type=int, default=32)
    parser.add_argument("--overlap-frames", type=int, default=8)
    parser.add_argument("--wait-s", type=float, default=0.2, help="wait per batch of the latency-bound stage")
    parser.add_argument("--wait-frames", type=int, default=256)
    parser.add_argument("--gpu-frames", type=int, default=310)
    parser.add_argument("--gpu-input-size", type=int, default=518)
    parser.add_argument("--gpu-chunk-frames", type=int, default=96)
    args = parser.parse_args()
    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    cpu = cpu_scaling(args.frames, args.input_size, args.chunk_frames, args.overlap_frames)
    print(f"\nCPU: chunked VDA vits (synthetic) input {args.input_size}, {args.frames} frames of "
          f"{CLIP.name}, chunks of {args.chunk_frames} (+{args.overlap_frames} overlap), 1 thread per actor; "
          f"{os.cpu_count()} cores, load average {load:.1f} at start")
    print(f"{'replicas':<10}{'fps':>10}{'driver CPU/s':>14}")
    for n, (fps, driver_cpu) in cpu.items():
        print(f"{n:<10}{fps:>10.2f}{driver_cpu:>14.2f}")
    ratio = cpu[2][0] / cpu[1][0]
    print(f"speed-up 2/1: {ratio:.3f}   efficiency: {ratio / 2:.3f}")
    lat = latency_scaling(args.wait_frames, args.chunk_frames, args.overlap_frames, args.wait_s)
    print(f"\nlatency-bound stage ({args.wait_s:g} s per batch of 16, no CPU), {args.wait_frames} frames, "
          f"chunks of {args.chunk_frames} (+{args.overlap_frames})")
    print(f"{'replicas':<10}{'fps':>10}{'ideal':>10}{'efficiency':>12}{'speed-up':>10}")
    for n, (fps, ideal) in lat.items():
        print(f"{n:<10}{fps:>10.2f}{ideal:>10.2f}{fps / ideal:>12.3f}{fps / lat[1][0]:>10.3f}")
    if not torch.cuda.is_available():
        print("\nGPU: skipped (torch sees no CUDA device)")
        return
    gpu = gpu_sharing(args.gpu_frames, args.gpu_input_size, args.gpu_chunk_frames, args.overlap_frames)
    print(f"\nGPU ({torch.cuda.get_device_name(0)}): VDA vits (synthetic) input {args.gpu_input_size}, "
          f"{args.gpu_frames} frames")
    print(f"{'path':<34}{'fps':>10}")
    print(f"{'bare model (1 stream)':<34}{gpu['bare_fps']:>10.2f}")
    print(f"{'vdp: 2 actors x 0.5 GPU, chunked':<34}{gpu['vdp_fps']:>10.2f}")
    print(f"ratio vdp/bare: {gpu['ratio']:.3f}  (actor devices: {gpu['devices']})")


if __name__ == "__main__":
    main()
