"""Real models on a CUDA GPU at 1080p: the bare model vs `vdp run` end to end, NVDEC on and off.

Run on a machine with an NVIDIA GPU (one prepared run, about 5-8 minutes on an H100):

    python benchmarks/gpu.py                      # VDA-S, VDA-L (fp16) and RVM, 240 frames
    python benchmarks/gpu.py --dry-run            # list the runs (no CUDA needed)
    python benchmarks/gpu.py --models vda_s --frames 480 --json out.json

Models (synthetic weights: deterministic random tensors in the real architectures, never
downloaded; the numbers measure speed only): VDA-S (``vits``) and VDA-L (``vitl``) at their
default input size 518, offline windows, and RVM mobilenetv3 with the deep guided filter;
precision fp16 (autocast). Input: the juggle sample scaled to 1920x1080 H.264 and looped to
``--frames`` (made once into a temp folder).

Per model:

1. **bare model**: the stage runs on frames decoded beforehand into memory; the model's own
   forward calls inside it are timed with hooks and ``torch.cuda.synchronize`` (after a
   warm-up pass), so "model fps" is output frames / the model's GPU time over exactly the
   windows the stage gives it, and "stage fps" adds the stage's own pre/post-processing.
2. **end to end** through `vdp.engine.job.run_job` (what ``vdp run`` calls), outputs
   ``depth_png16`` + ``depth_color_mp4`` (RVM: ``--matte-outputs``, default ``alpha_mp4``),
   each after a warm-up job of ``--warmup-frames``:
   ``local`` (one process; its decode is on the CPU), ``ray nvdec`` (an embedded Ray instance,
   one actor on the GPU that decodes its chunk with NVDEC, TorchCodec CUDA, with CPU fallback
   recorded in report.json) and ``ray cpu-decode`` (the same actor decoding on the CPU). The
   engine has no spec option for the decode device yet: ``cpu-decode`` builds its actor (a
   separate actor key) with the engine's decode-device choice set to the CPU in that process.

Printed: a table (fps, GPU-bound fps of the model, ratio end-to-end / bare model, decode device
actually used, host CPU ms per frame) and ``--json`` (default ``gpu_bench.json``) with every
figure and the machine (GPU name, torch, CUDA, driver). Runs still waiting when ``--budget-s``
is spent are skipped and listed as skipped. Without CUDA the script exits with one line.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODELS = {  # name -> (stage, stage options)
    "vda_s": ("depth", {"model": "vits", "synthetic_weights": True}),
    "vda_l": ("depth", {"model": "vitl", "synthetic_weights": True}),
    "rvm": ("matte", {"variant": "mobilenetv3", "refiner": "deep_guided_filter", "synthetic_weights": True}),
}
E2E = {  # path -> (local, decode on the CPU in the actor)
    "local": (True, False),
    "ray nvdec": (False, False),
    "ray cpu-decode": (False, True),
}


def plan_runs(models: list[str], paths: list[str], frames: int, depth_outputs: list[str],
              matte_outputs: list[str]) -> list[dict[str, Any]]:
    """The runs in order: per model, the bare-model run then the end-to-end paths."""
    runs = []
    for m in models:
        stage = MODELS[m][0]
        outputs = depth_outputs if stage == "depth" else matte_outputs
        runs.append({"model": m, "path": "bare model", "frames": frames, "outputs": []})
        runs += [{"model": m, "path": p, "frames": frames, "outputs": list(outputs)} for p in paths]
    return runs


DEVICE = "cuda"  # --device cpu: a functional smoke run of this script only, not a benchmark


def job_spec(model: str, clip: Path, frames: int, outputs: list[str]) -> Any:
    from vdp.spec import JobSpec

    stage, options = MODELS[model]
    return JobSpec.parse({"input": str(clip), "max_frames": frames,
                          "precision": "fp16" if DEVICE == "cuda" else "fp32",
                          "stages": {stage: options}, "outputs": [{"kind": k} for k in outputs],
                          "resources": {"device": DEVICE}, "overwrite": True})


def _sync() -> None:
    import torch

    if DEVICE == "cuda":
        torch.cuda.synchronize()


def cuda_machine() -> dict[str, Any]:
    """GPU name, torch/CUDA versions and the driver (for the JSON)."""
    import subprocess

    import torch

    driver = ""
    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda,
            "driver": driver, "cpus": os.cpu_count(), "python": platform.python_version()}


def bare_model(model: str, clip: Path, frames: int, warmup_frames: int) -> dict[str, Any]:
    """Stage fps and model-only fps over the same windows (see the module docstring)."""
    import torch

    from vdp.engine.plan import plan_stages
    from vdp.io import iter_batches, probe

    spec = job_spec(model, clip, frames, [])
    stage = plan_stages(spec)[0].build()
    stage.setup(DEVICE)
    batches = [b for b in iter_batches(clip, batch_frames=spec.resources.batch_frames, stop_frame=frames)]
    info = probe(clip)
    gpu_s, started = [0.0], []

    def pre(*_: Any) -> None:
        _sync()
        started.append(time.perf_counter())

    def post(*_: Any) -> None:
        _sync()
        gpu_s[0] += time.perf_counter() - started.pop()

    def run(use: list) -> tuple[int, float]:
        state, n = stage.init_state(info), 0
        t0 = time.perf_counter()
        for b in use:
            out, state = stage.process(b, state)
            n += len(out)
        tail = stage.flush(state)
        _sync()
        return n + (0 if tail is None else len(tail)), time.perf_counter() - t0

    run(batches[:max(1, -(-warmup_frames // spec.resources.batch_frames))])  # warm-up (kernels, allocator)
    stage.model.register_forward_pre_hook(pre)
    stage.model.register_forward_hook(post)
    n, stage_s = run(batches)
    del stage
    if DEVICE == "cuda":
        torch.cuda.empty_cache()
    return {"frames": n, "fps": n / stage_s, "model_fps": n / gpu_s[0], "model_ms_per_frame": gpu_s[0] * 1000 / n}


def _cpu_decode_build(build: Any) -> Any:
    """In the actor's process: the engine's decode-device choice set to the CPU, then `build`."""
    import vdp.engine.actor as actor

    actor.decode_device = lambda device: "cpu"
    return build()


def end_to_end(model: str, path: str, clip: Path, frames: int, outputs: list[str], warmup_frames: int,
               work: Path) -> dict[str, Any]:
    """One warm-up job and one measured job through `run_job` on `path`."""
    from dataclasses import replace

    from vdp.engine.job import run_job
    from vdp.engine.plan import plan_stages

    local, cpu_decode = E2E[path]
    tag = path.replace(" ", "_")

    def plans(spec: Any) -> list:
        ps = plan_stages(spec)
        if cpu_decode:
            ps = [replace(p, key=f"{p.key}-cpudec", build=partial(_cpu_decode_build, p.build)) for p in ps]
        return ps

    warm = job_spec(model, clip, warmup_frames, outputs)
    run_job(warm, work / f"warm_{model}_{tag}", local=local, plans=plans(warm))
    spec = job_spec(model, clip, frames, outputs)
    cpu0, t0 = _machine_cpu_s(), time.perf_counter()
    report = run_job(spec, work / f"{model}_{tag}", local=local, plans=plans(spec))
    wall = time.perf_counter() - t0
    host = _machine_cpu_s() - cpu0
    if report.status != "succeeded":
        raise RuntimeError(f"{model} {path}: job {report.status}: {report.error}")
    runs = (report.chunks or {}).get("runs") or [{}]
    decode = runs[0].get("decode", {}) if not local else {"on": "driver", "device": "cpu"}
    stage = MODELS[model][0]
    busy = report.stages.get(stage, {})
    return {"frames": report.frames, "fps": report.frames / wall, "wall_s": wall,
            "host_cpu_ms_per_frame": host * 1000 / max(1, report.frames),
            "decode": {k: decode.get(k) for k in ("on", "device", "requested_device", "fallback") if k in decode},
            "stage_busy_fps": busy.get("busy_fps"), "device": report.device}


def _machine_cpu_s() -> float:
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:8]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def print_table(results: list[dict[str, Any]]) -> None:
    bare = {r["model"]: r for r in results if r["path"] == "bare model" and "fps" in r}
    print(f"\n{'model':<6} {'path':<15} {'fps':>7} {'model fps':>9} {'e2e/model':>9} {'decode':>12} "
          f"{'host CPU ms/f':>13}  outputs")
    for r in results:
        if "skipped" in r or "error" in r:
            print(f"{r['model']:<6} {r['path']:<15} {r.get('skipped') or 'error: ' + r['error']}")
            continue
        model_fps = bare.get(r["model"], {}).get("model_fps")
        ratio = f"{r['fps'] / model_fps:.2f}" if model_fps and r["path"] != "bare model" else ""
        dec = r.get("decode", {}).get("device", "")
        host = f"{r['host_cpu_ms_per_frame']:.1f}" if "host_cpu_ms_per_frame" in r else ""
        print(f"{r['model']:<6} {r['path']:<15} {r['fps']:>7.1f} {r.get('model_fps', model_fps or 0):>9.1f} "
              f"{ratio:>9} {dec:>12} {host:>13}  {', '.join(r['outputs']) or '-'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--paths", nargs="+", default=list(E2E), choices=list(E2E))
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--warmup-frames", type=int, default=48)
    ap.add_argument("--depth-outputs", nargs="+", default=["depth_png16", "depth_color_mp4"])
    ap.add_argument("--matte-outputs", nargs="+", default=["alpha_mp4"])
    ap.add_argument("--budget-s", type=float, default=420.0, help="skip runs that would start after this")
    ap.add_argument("--json", default="gpu_bench.json", help="where to write every figure")
    ap.add_argument("--dry-run", action="store_true", help="list the runs and exit (no CUDA needed)")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                    help="cpu: a functional smoke run of the script (tiny --frames), not a benchmark")
    args = ap.parse_args(argv)
    global DEVICE
    DEVICE = args.device
    runs = plan_runs(args.models, args.paths, args.frames, args.depth_outputs, args.matte_outputs)
    if args.dry_run:
        for r in runs:
            print(f"{r['model']:<6} {r['path']:<15} {r['frames']} frames 1920x1080  "
                  f"{', '.join(r['outputs']) or 'no outputs (model timing)'}")
        return 0
    import torch

    if DEVICE == "cuda" and not torch.cuda.is_available():
        print("gpu.py: CUDA is not available here (torch.cuda.is_available() is False); "
              "run it on a machine with an NVIDIA GPU, or use --dry-run", file=sys.stderr)
        return 2
    from benchmarks.gpu_sim import make_input
    from vdp.engine.cluster import ensure_ray, shutdown_ray

    # Ray's workers import this checkout
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    t_start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="vdp_gpu_bench_"))
    clip = make_input(args.frames, work)
    machine = cuda_machine() if DEVICE == "cuda" else {"gpu": "none (CPU smoke run)", "torch": torch.__version__,
                                                       "cuda": None, "driver": "", "cpus": os.cpu_count()}
    print(f"{machine['gpu']}, torch {machine['torch']}, CUDA {machine['cuda']}, driver {machine['driver']}; "
          f"input {clip.name} (1920x1080)", flush=True)
    results = []
    try:
        if any(not E2E[p][0] for p in args.paths):
            ensure_ray()
        for r in runs:
            if time.monotonic() - t_start > args.budget_s:
                results.append({**r, "skipped": f"skipped: --budget-s {args.budget_s:g} spent"})
                continue
            try:
                if r["path"] == "bare model":
                    r.update(bare_model(r["model"], clip, r["frames"], args.warmup_frames))
                else:
                    r.update(end_to_end(r["model"], r["path"], clip, r["frames"], r["outputs"],
                                        args.warmup_frames, work))
            except Exception as exc:  # noqa: BLE001 - one failed run is reported, the others go on
                r["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            results.append(r)
            print(f"  {r['model']} {r['path']}: "
                  f"{r.get('error') or format(r.get('fps', 0), '.1f') + ' fps'}", flush=True)
    finally:
        shutdown_ray()
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    print_table(results)
    Path(args.json).write_text(json.dumps({"machine": machine, "frames": args.frames, "results": results,
                                           "seconds": round(time.monotonic() - t_start, 1)}, indent=2))
    print(f"\nwrote {args.json} ({time.monotonic() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
