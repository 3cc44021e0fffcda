"""benchmarks/gpu.py without a GPU: it lists its runs, and refuses to run in one line."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_dry_run_lists_every_model_and_path():
    proc = run("--dry-run", "--frames", "96")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 3 * 4  # 3 models x (bare model + local + ray nvdec + ray cpu-decode)
    assert sum("bare model" in ln for ln in lines) == 3
    assert all("96 frames 1920x1080" in ln for ln in lines)
    depth = [ln for ln in lines if ln.startswith(("vda_s", "vda_l")) and "bare" not in ln]
    assert depth and all("depth_png16, depth_color_mp4" in ln for ln in depth)


def test_dry_run_follows_the_selection():
    proc = run("--dry-run", "--models", "rvm", "--paths", "ray nvdec", "--matte-outputs", "rgba_png")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["rvm", "bare", "model", "240", "frames", "1920x1080", "no", "outputs",
                                   "(model", "timing)", "rvm", "ray", "nvdec", "240", "frames", "1920x1080",
                                   "rgba_png"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_without_cuda_one_line_and_nonzero_exit(tmp_path):
    proc = run("--json", str(tmp_path / "out.json"))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "CUDA is not available" in proc.stderr
    assert not (tmp_path / "out.json").exists()
