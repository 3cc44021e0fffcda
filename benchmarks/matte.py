"""Matte stage throughput vs the bare RVM forward on the same chunks (CPU or GPU, synthetic weights).

Run: ``python benchmarks/matte.py [--frames N] [--threads N] [--batch-frames N]``; on a GPU,
``--device cuda --size 1920x1080 --ratio 0.25 --precision fp16`` (the official 172 fps setting).

Both paths see the same decoded frames and call the model on the same chunks of
``frames_per_call`` frames with the same (auto) downsample ratio; the difference is the stage's
overhead (uint8 -> float conversion, buffering, finiteness check, copying layers to CPU).
Outputs are synthetic-weight mattes: the numbers measure speed only.

``--end-to-end`` also runs ``vdp run --local`` (decode + matte + writing ``--outputs``) on the
same frames in a child process and compares its fps with the bare model's (the official
converter on this machine kind, writing PNGs: 1.54 fps end to end, 2.6 GB peak RSS, vs 3.12 fps
for its own bare model on 1280x720, i.e. 49%). The default output is the like-for-like one, an
RGBA PNG sequence (foreground and exact alpha in one file per frame, like the converter's PNG
composition); add ``alpha_mp4`` etc. to see what more outputs cost. The bare model is timed
twice: warm (in this process, after a warm-up call, as above) and cold (a fresh process timing
its first pass over the frames, which pays the same one-time costs a job does: first-call
kernel set-up, first-touch page faults). The two paths alternate ``--repeats`` times; the best
run of each is compared (the least noisy estimate of each path's cost), and so is each
back-to-back pair (their spread shows how far these VMs' minute-to-minute noise moves a
ratio). End-to-end fps is given per process (interpreter start, imports, model set-up
included) and per job (``report.json`` wall_seconds: probe, model set-up, decode, matte,
writing and publishing the outputs; not loading the libraries, which a process does once for
all its jobs).
"""
from __future__ import annotations

import argparse
import os
import time
from contextlib import nullcontext
from pathlib import Path

import vdp  # noqa: F401  before torch, so the bare model gets vdp's allocator setting too
import torch
import torch.nn.functional as F

from vdp.models.rvm import MattingNetwork, auto_downsample_ratio
from vdp.spec import MatteSpec
from vdp.stages.matte import MatteStage
from vdp.types import FrameBatch, VideoInfo

CLIP = Path(__file__).resolve().parent.parent / "tests" / "resources" / "media" / "sam2__05_default_juggle.mp4"


def decode(path: Path, frames: int, batch_frames: int) -> list[FrameBatch]:
    """The first `frames` frames as engine-sized batches (vdp.io, else imageio-ffmpeg)."""
    try:
        from vdp.io import iter_batches
    except ImportError:
        iter_batches = None
    if iter_batches is not None:
        return list(iter_batches(path, batch_frames=batch_frames, stop_frame=frames))
    import imageio.v3 as iio

    rgb = torch.stack([torch.from_numpy(f).permute(2, 0, 1).contiguous()
                       for _, f in zip(range(frames), iio.imiter(path, plugin="FFMPEG"))])
    idx = torch.arange(len(rgb))
    return [FrameBatch(rgb[s:s + batch_frames], idx[s:s + batch_frames], idx[s:s + batch_frames] / 30.0)
            for s in range(0, len(rgb), batch_frames)]


def run_model(model: MattingNetwork, frames: torch.Tensor, per_call: int, ratio: float,
              dtype: torch.dtype | None = None) -> float:
    """Seconds for the bare forward over `frames` (uint8, on the model's device) in chunks of
    `per_call`, states carried; under autocast to `dtype` when given (as the stage runs)."""
    rec: list = [None] * 4
    device = frames.device.type
    autocast = nullcontext() if dtype is None else torch.autocast(device, dtype=dtype)
    _sync(device)
    t0 = time.perf_counter()
    with torch.inference_mode(), autocast:
        for s in range(0, len(frames), per_call):
            src = frames[s:s + per_call].float().div_(255)[None]
            _, _, *rec = model(src, *rec, downsample_ratio=ratio)
    _sync(device)
    return time.perf_counter() - t0


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def resized(batches: list[FrameBatch], size: str | None) -> list[FrameBatch]:
    """`batches` with frames scaled to ``size`` (``WxH``, bilinear), e.g. 1920x1080 for the
    GPU figures; unchanged when `size` is None."""
    if not size:
        return batches
    w, h = (int(v) for v in size.lower().split("x"))
    return [FrameBatch(F.interpolate(b.frames.float(), size=(h, w), mode="bilinear", align_corners=False)
                       .round_().clamp_(0, 255).to(torch.uint8), b.indices, b.pts_seconds)
            for b in batches]


def run_stage(stage: MatteStage, batches: list[FrameBatch], info: VideoInfo) -> float:
    """Seconds for init_state / process every batch / flush."""
    t0 = time.perf_counter()
    state = stage.init_state(info)
    n = 0
    for b in batches:
        out, state = stage.process(b, state)
        n += len(out)
    tail = stage.flush(state)
    n += 0 if tail is None else len(tail)
    if n != sum(len(b) for b in batches):
        raise RuntimeError(f"stage emitted {n} frames for {sum(len(b) for b in batches)}")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60, help="frames to process (default 60)")
    parser.add_argument("--frames-per-call", type=int, default=12)
    parser.add_argument("--batch-frames", type=int, default=16, help="decoded batch size fed to the stage")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=1, help="alternating runs per path; best is shown")
    parser.add_argument("--video", type=Path, default=CLIP)
    parser.add_argument("--end-to-end", action="store_true", help="also time `vdp run --local`")
    parser.add_argument("--outputs", default="rgba_png",
                        help="comma-separated output kinds of the end-to-end job (default rgba_png)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"],
                        help="fp16/bf16: autocast, in the stage and the bare model alike")
    parser.add_argument("--size", default=None, help="scale frames to WxH first, e.g. 1920x1080")
    parser.add_argument("--ratio", type=float, default=None,
                        help="downsample ratio (default: the official auto rule, 0.4 at 720p)")
    parser.add_argument("--cold-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.end_to_end and (args.device != "cpu" or args.size or args.ratio or args.precision != "fp32"):
        parser.error("--end-to-end times the CPU job on the clip as it is: "
                     "leave out --device, --size, --ratio and --precision")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.cold_child:
        return cold_child(args)

    batches = resized(decode(args.video, args.frames, args.batch_frames), args.size)
    frames = torch.cat([b.frames for b in batches])
    h, w = frames.shape[-2:]
    info = VideoInfo(path=str(args.video), num_frames=len(frames), fps=30.0,
                     duration_seconds=len(frames) / 30.0, width=w, height=h, codec="")
    ratio = args.ratio or auto_downsample_ratio(h, w)
    stage = MatteStage(MatteSpec(variant="mobilenetv3", synthetic_weights=True, downsample_ratio=args.ratio,
                                 frames_per_call=args.frames_per_call), precision=args.precision)
    stage.setup(args.device)
    model = stage.model  # same weights, same module: only the wrapping differs
    on_device = frames.to(stage.device)  # the bare model is timed on tensors already there

    per_call = args.frames_per_call
    run_model(model, on_device[:per_call], per_call, ratio, stage.autocast_dtype)  # warm-up
    t_model = t_stage = float("inf")
    for _ in range(args.repeats):  # alternate, so both paths see similar machine load
        t_model = min(t_model, run_model(model, on_device, per_call, ratio, stage.autocast_dtype))
        _sync(stage.device.type)
        t_stage = min(t_stage, run_stage(stage, batches, info))  # uint8 in and out on the CPU

    n = len(frames)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    where = (torch.cuda.get_device_name() if stage.device.type == "cuda"
             else f"CPU, {torch.get_num_threads()} threads")
    print(f"RVM mobilenetv3, {where}, {args.precision}, {w}x{h}, ratio {ratio:.4f}, "
          f"{per_call} frames/call, stage fed batches of {args.batch_frames}, "
          f"best of {args.repeats}, load average {load}, "
          f"THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE')}")
    if stage.device.type == "cuda":
        print("official figure (RTX 3090, fp16, 1080p, ratio 0.25, tensor only): 172 frames/s")
    print(f"{'path':<12}{'frames':>8}{'seconds':>10}{'frames/s':>10}")
    for name, secs in (("model", t_model), ("stage", t_stage)):
        print(f"{name:<12}{n:>8}{secs:>10.2f}{n / secs:>10.3f}")
    print(f"stage/model throughput: {t_model / t_stage:.3f}")
    if args.end_to_end:
        end_to_end(args, n, t_model)


def cold_child(args: argparse.Namespace) -> None:
    """(In a fresh process) one timed pass of the bare model over the frames; prints JSON."""
    import json

    frames = torch.cat([b.frames for b in decode(args.video, args.frames, args.batch_frames)])
    stage = MatteStage(MatteSpec(variant="mobilenetv3", synthetic_weights=True), precision="fp32")
    stage.setup("cpu")
    ratio = auto_downsample_ratio(*frames.shape[-2:])
    print(json.dumps({"frames": len(frames),
                      "seconds": run_model(stage.model, frames, args.frames_per_call, ratio)}))


def end_to_end(args: argparse.Namespace, n: int, t_model: float) -> None:
    """`vdp run --local` on the same frames vs the bare model: fps and peak RSS."""
    import json
    import statistics
    import subprocess
    import sys
    import tempfile

    from _common import run_vdp

    spec = Path(tempfile.mkdtemp()) / "matte.yaml"
    threads = f"resources: {{threads: {args.threads}}}\n" if args.threads else ""
    spec.write_text(f"stages:\n  matte: {{variant: mobilenetv3, frames_per_call: {args.frames_per_call}, "
                    f"synthetic_weights: true}}\nprecision: fp32\n{threads}"
                    "outputs:\n" + "".join(f"  - {{kind: {k}}}\n" for k in args.outputs.split(",")))
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads or torch.get_num_threads())}
    child = [sys.executable, __file__, "--cold-child", "--frames", str(n), "--video", str(args.video),
             "--frames-per-call", str(args.frames_per_call), "--batch-frames", str(args.batch_frames)]
    if args.threads:
        child += ["--threads", str(args.threads)]
    colds, runs = [], []
    for _ in range(args.repeats):  # alternate, so each pair sees similar machine load
        out = subprocess.run(child, env=env, capture_output=True, text=True, timeout=3600, check=True)
        colds.append(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])
        runs.append(run_vdp([str(args.video), "--spec", str(spec), "--local", "--max-frames", str(n)],
                            threads=args.threads or torch.get_num_threads()))
    frames = runs[0]["report"]["frames"]
    process = frames / min(r["wall_s"] for r in runs)
    job = frames / min(r["report"]["wall_seconds"] for r in runs)
    rss = max(r["peak_rss_mb"] for r in runs)
    print(f"\nend to end: vdp run --local (decode + matte + writing {args.outputs}), best of "
          f"{args.repeats}; peak RSS {rss:.0f} MB (largest of the runs)")
    print(f"{'bare model':<34}{'frames/s':>9}{'process e2e/bare':>18}{'job e2e/bare':>14}")
    for name, bare in (("warm (this process)", n / t_model), ("cold (fresh process)", n / min(colds))):
        print(f"{name:<34}{bare:>9.3f}{process / bare:>18.3f}{job / bare:>14.3f}")
    print(f"{'end to end: process / job':<34}{process:>9.3f} / {job:.3f} frames/s")
    # Best-of figures pair runs that may sit minutes apart; each (cold bare, job) pair ran
    # back to back, so the spread of their ratios shows what the machine's noise allows.
    pairs = sorted(c / r["report"]["wall_seconds"] for c, r in zip(colds, runs))
    print(f"job e2e / cold bare, per back-to-back pair: {' '.join(f'{x:.3f}' for x in pairs)}; "
          f"median {statistics.median(pairs):.3f}")


if __name__ == "__main__":
    main()
