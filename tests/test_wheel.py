"""An installed wheel carries its presets and colour tables: built from this tree, installed in a
fresh venv and run from a folder outside the repository, `vdp presets` lists every preset and one
runs."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.conftest import MEDIA
from vdp.spec import list_presets

ROOT = Path(__file__).resolve().parent.parent


def _run(*cmd, cwd: Path, env: dict | None = None) -> str:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_installed_wheel_lists_and_runs_presets(tmp_path):
    src = tmp_path / "src"  # a copy, so the build leaves nothing in the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "vdp", src / "vdp", ignore=shutil.ignore_patterns("__pycache__"))
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", ".",
         "-w", tmp_path / "whl", cwd=src)
    venv.create(tmp_path / "venv", with_pip=True)
    bin_dir = tmp_path / "venv" / "bin"
    _run(bin_dir / "pip", "install", "-q", "--no-deps", *sorted((tmp_path / "whl").glob("vdp-*.whl")),
         cwd=tmp_path)
    # the dependencies come from this interpreter's site-packages; vdp only from the wheel
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
           "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    where = _run(bin_dir / "python", "-c", "import vdp; print(vdp.__file__)", cwd=tmp_path, env=env)
    assert where.startswith(str(tmp_path / "venv"))
    table = _run(bin_dir / "python", "-c", "from vdp.outputs.colormap import colormap_table; "
                 "print(colormap_table('inferno')[255].tolist())", cwd=tmp_path, env=env)
    assert table.strip() == "[252, 255, 164]"  # the colour tables are package data in the wheel
    listed = _run(bin_dir / "vdp", "presets", cwd=tmp_path, env=env)
    assert [line.split()[0] for line in listed.splitlines()] == list(list_presets())
    _run(bin_dir / "vdp", "run", MEDIA / "androidx__bear-vp9-odd-dimensions.webm", "--preset", "matte",
         "--synthetic-weights", "--max-frames", "2", "--local", "--out", tmp_path / "out",
         cwd=tmp_path, env=env)
    stem = "androidx__bear-vp9-odd-dimensions"  # `vdp run` names outputs after the input
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")) == [
        f"{stem}_alpha.mp4", f"{stem}_composite.mp4", f"{stem}_foreground.webm", "report.json",
        "spec.json"]
