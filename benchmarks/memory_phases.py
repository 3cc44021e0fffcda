"""Where a job's memory goes: RSS sampled by phase while the depth preset runs in this process.

Makes an H.264 test-pattern clip (``--size``, ``--frames``), runs ``run_job`` on it locally
with synthetic weights (the depth preset: input 518) and samples this process's RSS every
50 ms together with the vdp code each thread is in. Prints every rise of more than ``--step``
MB with the code that was running, then the peak. RSS is what the kernel counts: memory freed
by one phase and kept by the allocator is reused by the next, so a rise is new memory.

Measured (2-core CPU machine, 7680x4320, 6 frames, preset outputs), before the network computed
in parts: imports and synthetic weights 0.6 GB; decoding 1.9 GB; DINOv2 encoder (one 32-slot
window at 518x924) 3.6 GB; temporal motion modules 5.3 GB; outputs (a 15360-wide preview then)
peak 7.8 GB. Now (encoder 8 frames, motion modules 1024 positions, levels 1-2 per micro-batch,
the preview's halves capped at 3840 px and scaled in uint8): decoding 1.4 GB, encoder 2.6 GB,
motion modules 3.4 GB, head output 3.6 GB, outputs (synthetic-weights stamps, colour, PNG
threads) peak 4.1 GB in this process; the ffmpeg encoders come on top (see `memory.py`).

Usage::

    python benchmarks/memory_phases.py [--size 7680x4320] [--frames 6] [--step 150]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vdp.io._ffmpeg import ffmpeg_exe  # noqa: E402


def rss_mb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    return 0


class Sampler(threading.Thread):
    """RSS and the vdp frames of every other thread, every `period_s`."""

    def __init__(self, period_s: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.period_s = period_s
        self.samples: list[tuple[float, int, list[str]]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        me = threading.get_ident()
        while not self.stop.is_set():
            where = []
            for tid, frame in sys._current_frames().items():
                if tid == me:
                    continue
                stack = [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in traceback.extract_stack(frame)
                         if "/vdp/" in f.filename]
                if stack:
                    where.append(" < ".join(reversed(stack[-3:])))
            self.samples.append((time.monotonic(), rss_mb(), where))
            time.sleep(self.period_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="7680x4320")
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--step", type=int, default=150, help="report rises of more than this many MB")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="vdp_phases_"))
    clip = folder / "clip.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={args.size}:rate=25",
                    "-frames:v", str(args.frames), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt",
                    "yuv420p", str(clip)], check=True, timeout=600)
    sampler = Sampler()
    sampler.start()
    from vdp.engine.job import run_job
    from vdp.spec import JobSpec, with_synthetic_weights

    spec = JobSpec.from_preset("depth", input=str(clip))
    spec = JobSpec.parse(with_synthetic_weights(json.loads(spec.to_json())))
    t0 = time.monotonic()
    run_job(spec, folder / "out", local=True)
    sampler.stop.set()
    sampler.join()
    last = 0
    for t, mb, where in sampler.samples:
        if mb > last + args.step:
            print(f"{t - t0:7.1f} s {mb:6d} MB  {' | '.join(where[:2])}")
            last = mb
    peak = max(mb for _, mb, _ in sampler.samples)
    print(f"peak RSS {peak} MB ({args.size}, {args.frames} frames, wall {time.monotonic() - t0:.0f} s)")


if __name__ == "__main__":
    main()
