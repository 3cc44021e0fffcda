"""CPU-only depth+matte through Ray vs in one process (``--local``): does Ray share the cores?

Run: ``python benchmarks/cores.py [--spec examples/demo.yaml] [--frames 32] [--repeats 2] [--cluster]``

Each repeat runs ``vdp run`` on the sample clip with synthetic weights, local then Ray (each a
fresh process, so each Ray run starts its embedded Ray and loads its actors, as `make demo`
does), and prints both wall times, the jobs' fps (frames / the job's own wall time in
report.json), the ratio Ray fps / local fps and the machine's load average before each run.
The Ray run's CPU allotment (``placement.cpu`` in report.json) is printed once.

With ``--cluster`` the Ray runs join a standing one-node cluster of this machine (``ray start``
with all its cores, stopped by pid at the end), as jobs do on a service or a cluster: one
unmeasured Ray job first starts the stage and writer actors, which the measured jobs find
running (they outlive a job), so those pay neither Ray's start nor the models' loading.

Where the time goes: the child process (``vdp run`` through `vdp.cli.main.main`) times its
phases: Ray start (`ensure_ray`), actors up with their models loaded (`acquire_replicas`) and
the frames (`ChunkScheduler.run`); locally, the models' setup (`LocalRunner.setup`) and the
frames (`run_chunks_locally` less the setup). Printed per run: setup seconds, frames seconds,
and "steady" fps = frames / frames seconds, with the ratio Ray / local of both fps; then each
model stage's busy seconds in its calls (report.json) on both paths: the same calls take longer
in Ray's actors than in one process.

Synthetic weights: the numbers measure speed only.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "tests" / "resources" / "media" / "sam2__05_default_juggle.mp4"


def run(spec: str, frames: int, out: Path, local: bool, env: dict[str, str] | None = None) -> dict:
    """One `vdp run` (in a child that times its phases, `child`; `env`: extra environment, e.g.
    the cluster to join); its wall time, the job's fps, its phases and the report's CPU
    allotment."""
    args = ["run", str(SAMPLE), "--spec", spec, "--synthetic-weights", "--max-frames", str(frames),
            "--out", str(out)] + (["--local"] if local else [])
    load = os.getloadavg()[0]
    t0 = time.monotonic()
    subprocess.run([sys.executable, __file__, "--child", str(out / "phases.json"), *args], check=True,
                   cwd=ROOT, stdout=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    wall = time.monotonic() - t0
    report = json.loads((out / "report.json").read_text())
    phases = json.loads((out / "phases.json").read_text())
    if local:
        setup = phases.get("models", 0.0)
        frames_s = phases.get("frames", 0.0) - setup
    else:
        setup = phases.get("ray_start", 0.0) + phases.get("actors", 0.0)
        frames_s = phases.get("frames", 0.0)
    busy = {name: st["busy_seconds"] for name, st in report.get("stages", {}).items()
            if name not in ("decode", "write")}  # the model stages' time in their calls
    return {"wall_s": wall, "fps": report["frames"] / report["wall_seconds"], "load": load, "busy_s": busy,
            "cpu": report.get("placement", {}).get("cpu"), "setup_s": setup, "frames_s": frames_s,
            "steady_fps": report["frames"] / frames_s if frames_s > 0 else float("nan"), "phases": phases}


def child(phases_path: str, argv: list[str]) -> int:
    """`vdp run ARGV` in this process, timing its phases into `phases_path` (JSON)."""
    sys.path.insert(0, str(ROOT))
    import vdp.engine.cluster as cluster
    import vdp.engine.local as local
    import vdp.engine.placement as placement
    import vdp.engine.scheduler as scheduler
    from vdp.cli.main import main as vdp_main

    phases: dict[str, float] = {}

    def timed(owner: object, name: str, label: str) -> None:
        inner = getattr(owner, name)

        def wrapper(*a: object, **k: object) -> object:
            t0 = time.monotonic()
            try:
                return inner(*a, **k)
            finally:
                phases[label] = phases.get(label, 0.0) + time.monotonic() - t0

        setattr(owner, name, wrapper)

    timed(cluster, "ensure_ray", "ray_start")
    timed(placement, "acquire_replicas", "actors")
    timed(scheduler.ChunkScheduler, "run", "frames")
    timed(local.LocalRunner, "setup", "models")
    timed(local, "run_chunks_locally", "frames")
    rc = vdp_main(argv)
    Path(phases_path).write_text(json.dumps(phases))
    return rc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=str(ROOT / "examples" / "demo.yaml"))
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--cluster", action="store_true",
                    help="Ray runs join a standing one-node cluster with its actors already running")
    if sys.argv[1:2] == ["--child"]:
        sys.exit(child(sys.argv[2], sys.argv[3:]))
    args = ap.parse_args()
    cluster = None
    ray_env: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            if args.cluster:
                sys.path.insert(0, str(ROOT / "benchmarks"))
                from _local_cluster import LocalCluster

                cluster = LocalCluster.start(nodes=1, cpus_per_node=os.cpu_count() or 1, gpus_per_node=0,
                                             object_store_mb=2048)
                ray_env = {"RAY_ADDRESS": cluster.address, "RAY_AUTH_TOKEN": cluster.token}
                warm = run(args.spec, args.frames, Path(tmp) / "warm-up", local=False, env=ray_env)
                print(f"cluster at {cluster.address}; warm-up Ray job {warm['wall_s']:.1f} s wall "
                      f"(actors {warm['phases'].get('actors', 0):.1f} s)", flush=True)
            compare(args, Path(tmp), ray_env)
        finally:
            if cluster is not None:
                cluster.stop()


def compare(args: argparse.Namespace, tmp: Path, ray_env: dict[str, str]) -> None:
    """`args.repeats` pairs of runs, local then Ray, each pair printed as it ends."""
    for i in range(args.repeats):
        local = run(args.spec, args.frames, tmp / f"local{i}", local=True)
        ray_ = run(args.spec, args.frames, tmp / f"ray{i}", local=False, env=ray_env)
        if i == 0:
            print("Ray CPU allotment:", json.dumps(ray_["cpu"]))
        print(f"repeat {i}: local {local['wall_s']:.1f} s wall, {local['fps']:.3f} fps (load {local['load']:.1f}); "
              f"Ray {ray_['wall_s']:.1f} s wall, {ray_['fps']:.3f} fps (load {ray_['load']:.1f}); "
              f"Ray/local fps {ray_['fps'] / local['fps']:.2f}", flush=True)
        print(f"  setup s (local: models; Ray: Ray start {ray_['phases'].get('ray_start', 0):.1f} + actors "
              f"{ray_['phases'].get('actors', 0):.1f}): local {local['setup_s']:.1f}, Ray {ray_['setup_s']:.1f}; "
              f"frames s: local {local['frames_s']:.1f}, Ray {ray_['frames_s']:.1f}; steady fps: local "
              f"{local['steady_fps']:.3f}, Ray {ray_['steady_fps']:.3f}, Ray/local "
              f"{ray_['steady_fps'] / local['steady_fps']:.2f}", flush=True)
        print("  model calls, busy s (local -> Ray, Ray/local): " + "; ".join(
            f"{name} {local['busy_s'][name]:.1f} -> {ray_['busy_s'].get(name, float('nan')):.1f} "
            f"({ray_['busy_s'].get(name, float('nan')) / local['busy_s'][name]:.2f})"
            for name in local["busy_s"] if local["busy_s"][name] > 0), flush=True)


if __name__ == "__main__":
    main()
