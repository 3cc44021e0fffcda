"""`vdp doctor` and `--device cuda` without CUDA, checked against what this machine really has."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import MEDIA

REPO = Path(__file__).resolve().parents[2]
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without CUDA")


def run_vdp(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(env or os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "vdp.cli.main", *args], capture_output=True,
                          text=True, timeout=300, env=env)


def test_doctor_json_matches_this_machine():
    proc = run_vdp("doctor", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["cuda"]["available"] == torch.cuda.is_available()
    assert report["cuda"]["torch_cuda_build"] == torch.version.cuda
    assert set(report["nvdec"]) == set(report["nvenc"]) == {"h264", "hevc", "av1", "vp9"}
    listed = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    assert report["nvenc"]["h264"]["listed"] == (" h264_nvenc " in listed)
    assert report["nvenc"]["vp9"]["available"] is False  # NVENC has no VP9 encoder
    # TorchCodec really loaded these FFmpeg libraries: the avcodec one is a real file
    avcodec = [p for p in report["ffmpeg"]["loaded"] if "libavcodec" in p]
    assert len(avcodec) == 1 and Path(avcodec[0]).is_file()
    assert report["ffmpeg"]["cli"].startswith("ffmpeg version")
    for s in [*report["nvdec"].values(), *report["nvenc"].values()]:
        assert s["available"] or s.get("reason")  # every "no" says why


@no_cuda
def test_doctor_says_why_decoding_falls_back_without_cuda():
    proc = run_vdp("doctor")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^CUDA\s+no: .+", proc.stdout, re.M)
    assert re.search(r"^NVDEC\s+h264\s+no: .+", proc.stdout, re.M)
    assert re.search(r"^fallback\s+decoding h264: on the CPU, because .+", proc.stdout, re.M)


@no_cuda
@pytest.mark.parametrize("local", [True, False])
def test_device_cuda_without_cuda_is_one_line_and_a_failed_report(tmp_path, local):
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    out = tmp_path / "out"
    proc = run_vdp("run", str(MEDIA / "av1_video.mkv"), "--preset", "depth", "--synthetic-weights",
                   "--max-frames", "2", "--device", "cuda", "--out", str(out),
                   *(["--local"] if local else []), env=env)
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower() or "Traceback" in line]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr
    assert errors[0].startswith("vdp: error: DeviceUnavailableError: resources.device is 'cuda' but")
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "failed" and "DeviceUnavailableError" in report["error"]
