"""`vdp probe` wall time per clip: the torch-free path against the library probe, same run.

For every clip in tests/resources/media, times in fresh child processes (what a user waits
for at the shell):
    * ``python -c pass``: the interpreter's own start, the floor;
    * ``vdp probe FILE`` (``python -m vdp.cli.main probe``): ffprobe's packet listing, no torch
      (`vdp.io.quick_probe`);
    * ``vdp.io.probe(FILE)`` in a child that imports it: the TorchCodec path `vdp probe` used
      before (torch import ~3 s on a quiet machine).
Median of ``--repeat`` interleaved runs; "own" is the time above ``python -c pass``; "cpu" the
CPU seconds (user + system) of the child and its ffmpeg/ffprobe runs, which a loaded machine
stretches far less than wall time.

Usage::

    python benchmarks/probe.py [--repeat 3] [CLIP ...]
"""
from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

MEDIA = Path(__file__).resolve().parents[1] / "tests" / "resources" / "media"
ROOT = Path(__file__).resolve().parents[1]
VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".webm", ".avi"}


CPU_S: list[float] = []  # CPU seconds of each `timed` call's process tree


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd: list[str]) -> float:
    c0, t0 = _children_cpu(), time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
                   timeout=600)
    wall = time.perf_counter() - t0
    CPU_S.append(_children_cpu() - c0)
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("clips", nargs="*", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    clips = args.clips or sorted(p for p in MEDIA.iterdir() if p.suffix in VIDEO_SUFFIXES)
    py = sys.executable
    floor = statistics.median(timed([py, "-c", "pass"]) for _ in range(args.repeat))
    floor_cpu = statistics.median(CPU_S)
    print(f"python -c pass: {floor:.3f} s wall, {floor_cpu:.3f} s cpu")
    print(f"{'clip':<52} {'vdp probe':>10} {'own':>7} {'cpu':>6} {'library':>9} {'cpu':>6} {'lib/vdp':>8}")
    quick_all, lib_all = [], []
    for clip in clips:
        quick, lib, quick_cpu, lib_cpu = [], [], [], []
        for _ in range(args.repeat):  # interleaved: load on the machine hits both alike
            quick.append(timed([py, "-m", "vdp.cli.main", "probe", str(clip)]))
            quick_cpu.append(CPU_S[-1])
            lib.append(timed([py, "-c", f"from vdp.io import probe; probe({str(clip)!r})"]))
            lib_cpu.append(CPU_S[-1])
        q, lb = statistics.median(quick), statistics.median(lib)
        quick_all.append(q)
        lib_all.append(lb)
        print(f"{clip.name[:52]:<52} {q:>9.3f}s {q - floor:>6.3f}s {statistics.median(quick_cpu):>5.2f}s "
              f"{lb:>8.3f}s {statistics.median(lib_cpu):>5.2f}s {lb / q:>7.1f}x")
    print(f"{'all clips (median)':<52} {statistics.median(quick_all):>9.3f}s "
          f"{statistics.median(quick_all) - floor:>6.3f}s {statistics.median(lib_all):>8.3f}s "
          f"{statistics.median(lib_all) / statistics.median(quick_all):>7.1f}x; "
          f"vdp probe / python -c pass: {statistics.median(quick_all) / floor:.1f}x")


if __name__ == "__main__":
    main()
