"""CPU cost of the seamless merge's per-frame work at 1080p, with a job's malloc settings.

Run: ``python benchmarks/merge.py [--batch 16] [--repeats 3]``

Rows (CPU ms per 1080p float32 depth frame, best and mean of ``--repeats``; fresh pages make
the first runs the dearest, so the mean is what a job sees):

* ``map, new tensor``: a chunk's affine map (`vdp.engine.merge.Fit.apply`) into a new
  batch-sized tensor per batch, as the chunk writers did before `ChunkWriter._mapped` reused one
  (the baseline the other rows are a ratio of);
* ``map, reused buffer``: the same into one buffer kept across batches;
* ``cross-fade``: the seam's blend of an overlap frame (`vdp.engine.merge.crossfade`).

In the GPU-speed simulation (`gpu_sim.py`) neighbouring chunks give identical overlap frames,
so every fit is the identity and no frame is mapped; a real model's chunks differ in scale and
shift, and every frame after the first chunk is mapped.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vdp.engine.merge import Fit, crossfade, crossfade_weights  # noqa: E402
from vdp.host_memory import return_large_buffers  # noqa: E402


def per_frame_ms(work, frames: int, repeats: int) -> tuple[float, float]:
    """(best, mean) CPU ms per frame over `repeats` runs of `work`."""
    runs = []
    for _ in range(repeats):
        t0 = time.process_time()
        work()
        runs.append((time.process_time() - t0) / frames * 1e3)
    return min(runs), sum(runs) / len(runs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=16, help="frames per batch (the overlap for the cross-fade)")
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    return_large_buffers()  # as in a job's writing process
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 1080, 1920, generator=gen) * 255
    y = torch.rand(args.batch, 1080, 1920, generator=gen) * 255
    fit = Fit(1.0123, -0.25)
    buf = torch.empty_like(x)
    n = args.batch * args.batches

    def mapped_new() -> None:
        for _ in range(args.batches):
            fit.apply(x)

    def mapped_reused() -> None:
        for _ in range(args.batches):
            fit.apply(x, buf)

    w = crossfade_weights(args.batch)
    rows = [("map, new tensor", per_frame_ms(mapped_new, n, args.repeats)),
            ("map, reused buffer", per_frame_ms(mapped_reused, n, args.repeats)),
            ("cross-fade", per_frame_ms(lambda: crossfade(x, y, fit, w), args.batch, args.repeats))]
    base = rows[0][1][1]
    print(f"1080p float32 depth, batches of {args.batch}; CPU ms per frame over {args.repeats} runs")
    print(f"{'':20s} {'best':>7s} {'mean':>7s}  mean/baseline")
    for name, (best, mean) in rows:
        print(f"{name:20s} {best:7.2f} {mean:7.2f}  x{mean / base:.2f}")


if __name__ == "__main__":
    main()
