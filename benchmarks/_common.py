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
        ``{"wall_s", "peak_rss_mb", "report"}``: wall time, the child's peak RSS (ru_maxrss of
        the child itself) and its report.json.
    """
    out = Path(tempfile.mkdtemp(prefix="vdp_bench_"))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "vdp.cli.main", "run", *args, "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = t0 + timeout_s
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            raise TimeoutError(f"{cmd} took longer than {timeout_s} s")
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"vdp run failed:\n{err[-2000:]}")
    report = json.loads((out / "report.json").read_text())
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024, "report": report, "out": out}


def table(rows: list[tuple], header: tuple) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), fmt.format(*["-" * w for w in widths]),
                      *[fmt.format(*r) for r in rows]])
