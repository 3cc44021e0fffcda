"""GPU-speed simulation: how fast vdp runs around models as fast as real ones on a GPU.

Stand-in stages sleep what the models cost per output frame on a GPU and use no CPU for it:
VDA-S 11 ms, VDA-L 21 ms (layer ``depth`` = the frames' green channel as float32 at full
resolution), RVM 6 ms (layers ``alpha`` = the green channel and ``foreground`` = the frames,
uint8 like the matte stage's), and ``sim40``, a 40 ms depth stand-in for scaling. The input is the juggle sample scaled to 1920x1080 H.264 (made once into
a temp folder). Each configuration runs through `vdp.engine.job.run_job` with ``plans=``
(nothing else of the engine is touched), after a warm-up job:

- ``local``: in this process;
- ``ray1`` / ``ray2``: an embedded Ray instance, 1 / 2 replicas (chunks of 96 frames, overlap 16);
- ``node1`` / ``node2``: a 2-node Ray cluster started on this machine (`benchmarks._local_cluster`:
  two ``ray start`` nodes with one fake GPU each, token auth), 1 replica / 2 replicas (one per
  node); this process is the driver. Printed after the table: fps of node2 / node1.

Printed per run: fps end to end; the stand-in's own fps (replicas x 1000 / ms: what the
"GPUs" could do); host CPU ms per frame (all processes: the machine's CPU time from
/proc/stat over the run, so other load on the machine counts too), the same less the CPU the
stand-in spent making its layers (a GPU's work: "less layer"), the driver process's own
CPU ms per frame (with its ffmpeg children), and host CPU split by role (driver / decode /
stage / write / ray / other: `benchmarks._cpu_roles`, threads told apart by name) with the load
average at the start of the run. On the ``local`` path the stage and the writing run on the
driver's main thread, so they count as ``driver`` there.

On a 2-core machine both "nodes" share the same cores: 2 replicas can reach 1.8x the fps of
one only while all of vdp's and Ray's CPU per frame stays under about 2000 ms / (1.8 x the
1-replica fps); other load on the machine (``other``) takes from the same cores.

    python benchmarks/gpu_sim.py                                  # VDA-S and RVM, 192 frames
    python benchmarks/gpu_sim.py --stand-ins vda_l --frames 480 --paths ray1 ray2
    python benchmarks/gpu_sim.py --depth-outputs none             # no outputs: the engine alone
    python benchmarks/gpu_sim.py --stand-ins sim40 --paths node1 node2 --frames 384   # 2 nodes
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import MEDIA  # noqa: E402
from benchmarks._cpu_roles import ROLES, RoleSampler, machine_cpu_s, name_native_threads  # noqa: E402
from vdp.engine.plan import StagePlan  # noqa: E402
from vdp.stages.base import Stage  # noqa: E402
from vdp.types import FrameBatch, VideoInfo  # noqa: E402

CLIP = MEDIA / "sam2__05_default_juggle.mp4"
STAND_INS = {  # name -> (stage name, ms per frame)
    "vda_s": ("depth", 11.0),
    "vda_l": ("depth", 21.0),
    "rvm": ("matte", 6.0),
    "sim40": ("depth", 40.0),
}
PATHS = {"local": (True, 1), "ray1": (False, 1), "ray2": (False, 2), "node1": (False, 1), "node2": (False, 2)}
CLUSTER_PATHS = ("node1", "node2")


class _StandIn(Stage):
    """Sleeps `ms_per_frame` per frame (a model on a GPU: the host CPU idles) and adds its
    layers from the frames (`layers`).

    Making them is the one CPU cost of the stand-in (a real model's layers arrive from the GPU
    instead; numpy on the calling thread, so its thread time is the whole cost): with `ledger`, each batch appends the thread CPU seconds it took to
    ``<ledger>/<pid>.txt``, so the benchmark can show it apart (`standin_layer_ms`)."""

    def __init__(self, ms_per_frame: float, ledger: str | None = None) -> None:
        super().__init__()
        self.ms = ms_per_frame
        self.ledger = ledger
        name_native_threads()  # built in the actor: its threads become attributable by role

    def init_state(self, info: VideoInfo) -> Any:
        return None

    def process(self, batch: FrameBatch, state: Any) -> tuple[FrameBatch, Any]:
        time.sleep(self.ms * len(batch) / 1000)
        t0 = time.thread_time()
        layers = self.layers(batch.frames)
        if self.ledger is not None:
            with open(os.path.join(self.ledger, f"{os.getpid()}.txt"), "a") as f:
                f.write(f"{time.thread_time() - t0:.6f}\n")
        return batch.with_layers(**layers), state

    def layers(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """The layers the model would give for uint8 ``frames`` ``[T,3,H,W]``."""
        raise NotImplementedError


class DepthStandIn(_StandIn):
    """VDA stand-in: ``depth`` = green as float32, 0..255."""

    name = "depth"
    produces = ("depth",)

    def layers(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"depth": torch.from_numpy(frames[:, 1].numpy().astype(np.float32))}


class MatteStandIn(_StandIn):
    """RVM stand-in: ``alpha`` = green and ``foreground`` = a copy of the frames, uint8 as the
    matte stage gives them (`vdp.stages.matte`)."""

    name = "matte"
    produces = ("alpha", "foreground")

    def layers(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        rgb = frames.numpy()
        return {"alpha": torch.from_numpy(np.ascontiguousarray(rgb[:, 1])),
                "foreground": torch.from_numpy(rgb.copy(order="K"))}


def make_input(frames: int, folder: Path) -> Path:
    """The sample scaled to 1920x1080 H.264, looped to at least `frames` frames."""
    import imageio_ffmpeg

    out = folder / f"juggle_1080p_{frames}.mp4"
    if not out.exists():
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", "-1",
                        "-i", str(CLIP), "-frames:v", str(frames), "-vf", "scale=1920:1080",
                        "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
                        "-an", str(out)], check=True, timeout=900)
    return out


def own_cpu_s() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


#: Where Ray runs write the outputs (``--write-on``; `resources.write_on_workers`).
WRITE_ON = {"workers": True}


def job_spec(clip: Path, frames: int, stand_in: str, outputs: list[str], local: bool,
             replicas: int, chunk: int, overlap: int):
    from vdp.spec import JobSpec

    stage = STAND_INS[stand_in][0]
    # no synthetic weights: the stand-ins replace the models, and the outputs must be written as
    # with real weights (synthetic ones stamp a warning on video frames, a slower RGB path)
    stages = {"depth": {}} if stage == "depth" else {"matte": {}}
    return JobSpec.parse({
        "input": str(clip), "max_frames": frames, "stages": stages,
        "outputs": [{"kind": k} for k in outputs],
        "chunking": {"enabled": not local, "chunk_frames": chunk, "overlap_frames": overlap,
                     "resumable": False},
        "resources": {"replicas": {stage: replicas}, "write_on_workers": WRITE_ON["workers"]},
    })


def layer_cpu_s(ledger: Path) -> float:
    """CPU seconds the stand-ins logged in `ledger` so far (`_StandIn`)."""
    return sum(float(x) for f in ledger.glob("*.txt") for x in f.read_text().split())


def actor_pids(report: Any) -> list[int]:
    """Process ids of the job's stage actors (from its report)."""
    reps = (getattr(report, "placement", None) or {}).get("replicas", {})
    return [r["pid"] for rs in reps.values() for r in rs if r.get("pid")]


def writer_pids(report: Any) -> list[int]:
    """Process ids of the writer actors that wrote the job's outputs on the workers."""
    writing = (getattr(report, "placement", None) or {}).get("writing", {})
    return [w["pid"] for w in writing.get("writers", []) if w.get("pid")]


def run_one(clip: Path, frames: int, stand_in: str, outputs: list[str], path: str, chunk: int,
            overlap: int, out_dir: Path, actors: list[int] = (), ray_roots: list[int] = (),
            writers: list[int] = ()) -> dict:
    """One job; `actors`: pids of its stage actors (from the warm-up), `ray_roots`: session
    leaders of the Ray nodes (cluster paths), watched by role."""
    from vdp.engine.job import run_job

    local, replicas = PATHS[path]
    stage, ms = STAND_INS[stand_in]
    cls = DepthStandIn if stage == "depth" else MatteStandIn
    # one ledger for every job: an actor keeps the stand-in it built for the warm-up job
    ledger = out_dir.parent / "standin_layer"
    ledger.mkdir(parents=True, exist_ok=True)
    plan = StagePlan(stage, f"sim-{stand_in}", partial(cls, ms, str(ledger)))
    layer0 = layer_cpu_s(ledger)
    spec = job_spec(clip, frames, stand_in, outputs, local, replicas, chunk, overlap)
    load = os.getloadavg()[0]
    sampler = RoleSampler({os.getpid(): "driver", **{pid: "stage" for pid in actors},
                           **{pid: "write" for pid in writers}, **{pid: "ray" for pid in ray_roots}})
    m0, c0, t0 = machine_cpu_s(), own_cpu_s(), time.perf_counter()
    report = run_job(spec, out_dir, local=local, plans=[plan])
    wall = time.perf_counter() - t0
    host, own, roles = machine_cpu_s() - m0, own_cpu_s() - c0, sampler.stop()
    if report.status != "succeeded":
        raise RuntimeError(f"{stand_in} {path}: job {report.status}: {getattr(report, 'error', '')}")
    n = report.frames
    return {"fps": n / wall, "standin_layer_ms": (layer_cpu_s(ledger) - layer0) * 1000 / n, "stand_in_fps": replicas * 1000 / ms, "wall_s": wall, "load": load,
            "host_ms": host * 1000 / n, "driver_ms": own * 1000 / n, "frames": n,
            "roles_ms": {k: v * 1000 / n for k, v in roles.items()}, "report": report}


def run_paths(clip: Path, args: argparse.Namespace, paths: list[str], work: Path,
              ray_roots: list[int] = ()) -> list[tuple]:
    """Every stand-in on every path of `paths` (one Ray connection), each after a warm-up job."""
    rows = []
    for stand_in in args.stand_ins:
        outs = args.depth_outputs if STAND_INS[stand_in][0] == "depth" else args.matte_outputs
        outs = [] if outs == ["none"] else outs
        for path in paths:
            # warm-up: same stand-in and path, small chunks so every replica starts
            warm = run_one(clip, args.warmup_frames, stand_in, outs, path,
                           max(16, args.warmup_frames // 2), 0, work / f"warmup_{stand_in}_{path}")
            r = run_one(clip, args.frames, stand_in, outs, path, args.chunk, args.overlap,
                        work / f"{stand_in}_{path}", actors=actor_pids(warm["report"]), ray_roots=ray_roots,
                        writers=writer_pids(warm["report"]))
            rows.append((stand_in, path, ", ".join(outs) or "no outputs", r))
            nodes = {rep.get("node_id") for rs in (r["report"].placement or {}).get("replicas", {}).values()
                     for rep in rs if rep.get("chunks")}
            print(f"  {stand_in} {path}: {r['fps']:.1f} fps, {r['wall_s']:.1f} s"
                  f"{f', chunks ran on {len(nodes)} node(s)' if not PATHS[path][0] else ''}", flush=True)
    return rows


def print_table(rows: list[tuple]) -> None:
    print(f"\n{'stand-in':<8} {'path':<6} {'outputs':<30} {'load':>5} {'fps':>6} {'stand-in fps':>12} "
          f"{'host ms/f':>9} {'less layer':>10} {'driver proc':>11} | " + " ".join(f"{r:>7}" for r in ROLES))
    for stand_in, path, outs, r in rows:
        print(f"{stand_in:<8} {path:<6} {outs:<30} {r['load']:>5.1f} {r['fps']:>6.1f} {r['stand_in_fps']:>12.0f} "
              f"{r['host_ms']:>9.1f} {r['host_ms'] - r['standin_layer_ms']:>10.1f} {r['driver_ms']:>11.1f} | "
              + " ".join(f"{r['roles_ms'][k]:>7.1f}" for k in ROLES))
    print("(CPU in ms per frame; 'less layer': host CPU less what the stand-in spent making its "
          "layers, which a real model's GPU would make; roles: see benchmarks/_cpu_roles.py; "
          "'ray' = Ray's daemons, 'other' = the rest of the machine)")
    fps = {(s, o, p): r["fps"] for s, p, o, r in rows}
    for (s, o, p), f in fps.items():
        base = {"node2": "node1", "ray2": "ray1"}.get(p)
        if base and (s, o, base) in fps:
            print(f"{s} ({o}): {p} / {base} fps = {f / fps[(s, o, base)]:.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=192)
    p.add_argument("--stand-ins", nargs="+", default=["vda_s", "rvm"], choices=sorted(STAND_INS))
    p.add_argument("--paths", nargs="+", default=["local", "ray1", "ray2"], choices=list(PATHS),
                   help="node1/node2 start a 2-node cluster on this machine (run after the others)")
    p.add_argument("--depth-outputs", nargs="+", default=["depth_png16", "depth_color_mp4"],
                   help="outputs of depth stand-ins ('none': no outputs)")
    p.add_argument("--matte-outputs", nargs="+", default=["foreground_webm"],
                   help="outputs of the RVM stand-in ('none': no outputs)")
    p.add_argument("--write-on", choices=["workers", "driver"], default="workers",
                   help="Ray paths: outputs written beside the models (default) or by the driver")
    p.add_argument("--chunk", type=int, default=96)
    p.add_argument("--overlap", type=int, default=16)
    p.add_argument("--warmup-frames", type=int, default=32)
    p.add_argument("--node-cpus", type=int, default=1, help="Ray CPU resource per node of the 2-node cluster")
    p.add_argument("--node-store-mb", type=int, default=2048, help="object store per node of the 2-node cluster")
    p.add_argument("--zero-copy-tensors", action="store_true",
                   help="Ray workers serialize torch tensors without copies (RAY_ENABLE_ZERO_COPY_TORCH_TENSORS=1)")
    args = p.parse_args()
    WRITE_ON["workers"] = args.write_on == "workers"

    from vdp.engine.cluster import ensure_ray, shutdown_ray

    name_native_threads()
    # Ray's workers (embedded instance and cluster nodes) import this checkout
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    ray_env = {"RAY_ENABLE_ZERO_COPY_TORCH_TENSORS": "1"} if args.zero_copy_tensors else {}
    os.environ.update(ray_env)  # an embedded instance's workers inherit it
    work = Path(tempfile.mkdtemp(prefix="vdp_gpu_sim_"))
    clip = make_input(args.frames, work)
    print(f"input: {clip.name}, 1920x1080, {args.frames} frames; {os.cpu_count()} CPUs, "
          f"torch threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.1f}")
    own = [x for x in args.paths if x not in CLUSTER_PATHS]
    on_cluster = [x for x in args.paths if x in CLUSTER_PATHS]
    rows, cluster = [], None
    try:
        if any(not PATHS[x][0] for x in own):
            ensure_ray()
        rows += run_paths(clip, args, own, work)
        if on_cluster:
            from benchmarks._local_cluster import LocalCluster

            shutdown_ray()
            cluster = LocalCluster.start(cpus_per_node=args.node_cpus, object_store_mb=args.node_store_mb,
                                         env=ray_env)
            cluster.connect(nodes=2)
            print(f"2-node cluster at {cluster.address} (1 fake GPU, {args.node_cpus} CPU per node)", flush=True)
            rows += run_paths(clip, args, on_cluster, work, ray_roots=[p.pid for p in cluster.procs])
    finally:
        shutdown_ray()
        if cluster is not None:
            cluster.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)
    print_table(rows)


if __name__ == "__main__":
    main()
