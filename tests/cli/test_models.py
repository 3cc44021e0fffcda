"""``vdp models list|fetch|verify`` (argparse wiring and output), with a local HTTP server."""
from __future__ import annotations

import argparse
import dataclasses
import io
from pathlib import Path

import pytest
import torch

from tests.models.local_http import NAME, checkpoint_bytes, serve, www  # noqa: F401 (fixtures)
from vdp.cli.models import add_parser
from vdp.models.weights import CHECKPOINTS


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vdp")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(list(argv))


def _call(*argv: str) -> tuple[int, str, str]:
    args = _parse(*argv)
    out, err = io.StringIO(), io.StringIO()
    kwargs = {"out": out} if args.models_command == "list" else {"out": out, "err": err}
    return args.func(args, **kwargs), out.getvalue(), err.getvalue()


def test_list_shows_files_presence_and_licences(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VDP_MODEL_DIR", str(tmp_path))
    (tmp_path / CHECKPOINTS["vits"].filename).write_bytes(b"x")
    code, out, _ = _call("models", "list")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[2:] if line and not line.startswith(" ")}
    assert set(CHECKPOINTS) <= set(rows)
    assert "video_depth_anything_vits.pth" in rows["vits"] and "present (no digest recorded)" in rows["vits"]
    assert "missing" in rows["vitl"] and "CC-BY-NC-4.0" in rows["vitl"] and "GPL-3.0" in rows["rvm_resnet50"]
    assert "vitb: weights are CC-BY-NC-4.0 (non-commercial use only)" in out
    assert "rvm_mobilenetv3: weights are GPL-3.0 (copyleft" in out
    assert "vits: weights" not in out  # Apache-2.0: no warning


def test_fetch_then_verify(www, checkpoint_bytes, tmp_path: Path,  # noqa: F811
                           monkeypatch: pytest.MonkeyPatch) -> None:
    base, folder = www
    serve(folder, checkpoint_bytes)
    ckpt = CHECKPOINTS[NAME]
    monkeypatch.setitem(CHECKPOINTS, NAME, dataclasses.replace(ckpt, url=f"{base}/{ckpt.filename}"))
    monkeypatch.setenv("VDP_MODEL_DIR", str(tmp_path / "models"))
    code, out, err = _call("models", "fetch", NAME, "--timeout-s", "10")
    assert code == 0 and str(tmp_path / "models" / ckpt.filename) in out
    assert "GPL-3.0" in err and "(100%)" in err
    code, out, _ = _call("models", "verify")
    assert code == 0 and f"{NAME}: ok (matches recorded digest; 380 tensors match the expected layout)" in out
    torch.save({"x": torch.zeros(1)}, tmp_path / "models" / CHECKPOINTS["vits"].filename)
    code, out, err = _call("models", "verify", "vits", "nope")
    assert code == 1 and "vits: FAILED" in err and "unknown checkpoint 'nope'" in err


def test_fetch_rejects_unknown_names_and_verify_needs_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VDP_MODEL_DIR", str(tmp_path))
    with pytest.raises(SystemExit):
        _parse("models", "fetch", "vitz")
    code, _, err = _call("models", "verify")
    assert code == 1 and "no checkpoints in" in err
