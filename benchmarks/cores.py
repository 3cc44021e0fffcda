"""CPU-only depth+matte through Ray vs in one process (``--local``): does Ray share the cores?

Run: ``python benchmarks/cores.py [--spec examples/demo.yaml] [--frames 32] [--repeats 2]``

Each repeat runs ``vdp run`` on the sample clip with synthetic weights, local then Ray (each a
fresh process, so each Ray run starts its embedded Ray and loads its actors, as `make demo`
does), and prints both wall times, the jobs' fps (frames / the job's own wall time in
report.json), the ratio Ray fps / local fps and the machine's load average before each run.
The Ray run's CPU allotment (``placement.cpu`` in report.json) is printed once.

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


def run(spec: str, frames: int, out: Path, local: bool) -> dict:
    """One `vdp run`; its wall time, the job's fps and the report's CPU allotment."""
    cmd = [sys.executable, "-m", "vdp.cli.main", "run", str(SAMPLE), "--spec", spec, "--synthetic-weights",
           "--max-frames", str(frames), "--out", str(out)] + (["--local"] if local else [])
    load = os.getloadavg()[0]
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    report = json.loads((out / "report.json").read_text())
    return {"wall_s": wall, "fps": report["frames"] / report["wall_seconds"], "load": load,
            "cpu": report.get("placement", {}).get("cpu")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=str(ROOT / "examples" / "demo.yaml"))
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            local = run(args.spec, args.frames, Path(tmp) / f"local{i}", local=True)
            ray_ = run(args.spec, args.frames, Path(tmp) / f"ray{i}", local=False)
            if i == 0:
                print("Ray CPU allotment:", json.dumps(ray_["cpu"]))
            print(f"repeat {i}: local {local['wall_s']:.1f} s wall, {local['fps']:.3f} fps (load {local['load']:.1f}); "
                  f"Ray {ray_['wall_s']:.1f} s wall, {ray_['fps']:.3f} fps (load {ray_['load']:.1f}); "
                  f"Ray/local fps {ray_['fps'] / local['fps']:.2f}", flush=True)


if __name__ == "__main__":
    main()
