"""Helpers shared by the benchmarks: media paths, looped clips, measured `vdp run` subprocesses."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MEDIA = ROOT / "tests" / "resources" / "media"


def looped_clip(src: Path, times: int, out_dir: Path) -> Path:
    """`src` repeated `times` times without re-encoding (ffmpeg stream loop, copy)."""
    out = out_dir / f"{src.stem}_x{times}{src.suffix}"
    if not out.exists():
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", str(times - 1), "-i", str(src),
                        "-c", "copy", "-an", str(out)], check=True, timeout=600)
    return out


def run_vdp(args: list[str], *, threads: int = 2, timeout_s: float = 3600) -> dict:
    """Run ``vdp run ARGS`` in a child process.

    Returns:
        ``{"wall_s", "peak_rss_mb", "report", "out"}``: wall time, the peak RSS of vdp's
        processes (the larger of the vdp process's own ``VmHWM`` and the sum of its and its
        children's ``VmRSS``, e.g. ffmpeg muxing audio, sampled every 0.1 s; pages both map,
        such as shared libraries, count twice), its report.json and its output folder.
    """
    out = Path(tempfile.mkdtemp(prefix="vdp_bench_"))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "vdp.cli.main", "run", *args, "--out", str(out)]
    stderr = tempfile.TemporaryFile()  # a file, not a pipe: a chatty child never blocks on it
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = t0 + timeout_s
    peak_kb = 0
    while True:
        peak_kb = max(peak_kb, _status_kb(proc.pid, "VmHWM"),
                      sum(_status_kb(p, "VmRSS") for p in [proc.pid, *_children(proc.pid)]))
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            raise TimeoutError(f"{cmd} took longer than {timeout_s} s")
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    stderr.seek(0)
    err = stderr.read().decode(errors="replace")
    stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"vdp run failed:\n{err[-2000:]}")
    report = json.loads((out / "report.json").read_text())
    return {"wall_s": wall, "peak_rss_mb": peak_kb / 1024, "report": report, "out": out}


def _status_kb(pid: int, field: str) -> int:
    """A memory figure of a process from ``/proc/PID/status`` in kB (0 once it has exited).

    Not ``ru_maxrss`` for the peak: a child started by vfork/exec inherits its parent's peak
    there, so a benchmark holding decoded frames would be charged to the child.
    """
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    """Child process ids of `pid` (Linux)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def table(rows: list[tuple], header: tuple) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), fmt.format(*["-" * w for w in widths]),
                      *[fmt.format(*r) for r in rows]])
