"""Depth stage throughput vs the bare model, and end-to-end speed / peak RSS vs video length.

Run: ``python benchmarks/depth.py [--input-size 112] [--frames 200] [--long 3000] [--threads 2]``

1. Stage vs model: the same decoded frames go through `DepthStage` (offline windows); the
   model's own forward calls inside it are timed with hooks, so "model" is the bare forward over
   exactly the same windows and the ratio is the stage's overhead (preprocessing, alignment,
   blending, resize back).
2. End to end (``vdp run --local``, decode + depth + 16-bit PNG writing) on sam2__bedroom.mp4
   (960x540) for `--frames` and for the clip looped to `--long` frames: fps and the child's peak
   RSS. The official code's figures on this machine kind (vits, synthetic weights, input 112,
   fp32, 2 threads): 200 frames -> 1.99 GB and 11.8 fps; 800 frames -> 5.92 GB, 11.8 fps.
Synthetic weights: the numbers measure speed and memory only.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import vdp  # noqa: F401  before torch, so the bare model gets vdp's allocator setting too
import torch

from _common import MEDIA, looped_clip, run_vdp, table
from vdp.io import iter_batches, probe
from vdp.spec import DepthSpec
from vdp.stages.depth import DepthStage

CLIP = MEDIA / "sam2__bedroom.mp4"


def stage_vs_model(frames: int, input_size: int) -> tuple[float, float]:
    """(stage fps, bare-model fps) over the same windows."""
    stage = DepthStage(DepthSpec(model="vits", input_size=input_size, synthetic_weights=True),
                       precision="fp32")
    stage.setup("cpu")
    model_s = 0.0
    started: list[float] = []
    stage.model.register_forward_pre_hook(lambda *_: started.append(time.perf_counter()))

    def post(*_):
        nonlocal model_s
        model_s += time.perf_counter() - started.pop()

    stage.model.register_forward_hook(post)
    batches = list(iter_batches(CLIP, batch_frames=16, stop_frame=frames))
    t0 = time.perf_counter()
    state = stage.init_state(probe(CLIP))
    n = 0
    for b in batches:
        out, state = stage.process(b, state)
        n += len(out)
    tail = stage.flush(state)
    n += 0 if tail is None else len(tail)
    stage_s = time.perf_counter() - t0
    return n / stage_s, n / model_s


def end_to_end(clip: Path, frames: int, input_size: int, threads: int) -> dict:
    spec = Path(tempfile.mkdtemp()) / "spec.yaml"
    spec.write_text(f"stages:\n  depth: {{model: vits, input_size: {input_size}, synthetic_weights: true}}\n"
                    f"precision: fp32\nresources: {{threads: {threads}}}\n"
                    "outputs:\n  - {kind: depth_png16}\n")
    res = run_vdp([str(clip), "--spec", str(spec), "--local", "--max-frames", str(frames)], threads=threads)
    res["fps"] = res["report"]["frames"] / res["wall_s"]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input-size", type=int, default=112)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--long", type=int, default=3000, help="frames of the looped clip")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    s_fps, m_fps = stage_vs_model(min(args.frames, 96), args.input_size)
    print(f"stage vs bare model (vits, input {args.input_size}, fp32, {args.threads} threads, CPU)")
    print(table([("model forward", f"{m_fps:.2f}"), ("DepthStage", f"{s_fps:.2f}"),
                 ("ratio stage/model", f"{s_fps / m_fps:.3f}")], ("path", "frames/s")))

    loops = -(-args.long // 200)
    long_clip = looped_clip(CLIP, loops, Path(tempfile.mkdtemp()))
    short = end_to_end(CLIP, args.frames, args.input_size, args.threads)
    long = end_to_end(long_clip, args.long, args.input_size, args.threads)
    print(f"\nend to end: vdp run --local, decode + depth + PNG16 (sam2__bedroom 960x540)")
    rows = [(f"{r['report']['frames']} frames", f"{r['fps']:.2f}", f"{r['peak_rss_mb']:.0f}")
            for r in (short, long)]
    rows.append(("ratio long/short", f"{long['fps'] / short['fps']:.3f}",
                 f"{long['peak_rss_mb'] / short['peak_rss_mb']:.3f}"))
    print(table(rows, ("run", "fps", "peak RSS MB")))
    print("official code on this machine kind: 200 frames 11.8 fps / 1990 MB; 800 frames 11.8 fps / 5920 MB")


if __name__ == "__main__":
    main()
