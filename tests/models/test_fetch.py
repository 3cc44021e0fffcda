"""Checkpoint download and verification against a local HTTP server (never the real network)."""
from __future__ import annotations

import hashlib

import pytest
import torch

from tests.models.local_http import NAME, checkpoint_bytes, registry_for, serve, www  # noqa: F401
from vdp.errors import WeightsError
from vdp.models.fetch import fetch, sidecar_path, verify
from vdp.models.weights import CHECKPOINTS

def test_fetch_reports_progress_records_digest_and_verifies(www, checkpoint_bytes, tmp_path) -> None:
    base, folder = www
    serve(folder, checkpoint_bytes)
    calls: list[tuple[int, int | None]] = []
    dest_dir = tmp_path / "models"
    path = fetch(NAME, progress=lambda done, total: calls.append((done, total)), timeout_s=10,
                 dest_dir=dest_dir, registry=registry_for(base))
    size = len(checkpoint_bytes)
    assert path == dest_dir / CHECKPOINTS[NAME].filename and path.read_bytes() == checkpoint_bytes
    assert calls[0] == (0, size) and calls[-1] == (size, size) and len(calls) > 2
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    digest = hashlib.sha256(checkpoint_bytes).hexdigest()
    assert sidecar_path(path).read_text() == f"{digest}  {CHECKPOINTS[NAME].filename}\n"
    assert sorted(p.name for p in dest_dir.iterdir()) == [path.name, sidecar_path(path).name]

    result = verify(NAME, path=path, registry=registry_for(base))
    assert (result.sha256, result.recorded, result.layout_checked, result.num_keys) == (digest, True, True, 380)

    with open(path, "ab") as f:
        f.write(b"\0")
    with pytest.raises(WeightsError, match="records .*: the file changed or is corrupted"):
        verify(NAME, path=path, registry=registry_for(base))


def test_fetch_rejects_a_checksum_mismatch(www, checkpoint_bytes, tmp_path) -> None:
    base, folder = www
    serve(folder, checkpoint_bytes)
    with pytest.raises(WeightsError, match=f"sha256 mismatch for {NAME}.*expected {'0' * 64}"):
        fetch(NAME, dest_dir=tmp_path / "bad", registry=registry_for(base, sha256="0" * 64))
    assert list((tmp_path / "bad").iterdir()) == []  # neither the file, a sidecar nor a .part
    good = hashlib.sha256(checkpoint_bytes).hexdigest()
    path = fetch(NAME, dest_dir=tmp_path / "m", registry=registry_for(base, sha256=good.upper()))
    assert verify(NAME, path=path, registry=registry_for(base, sha256=good)).recorded


def test_fetch_errors_and_skips(www, tmp_path) -> None:
    base, folder = www
    with pytest.raises(WeightsError, match="HTTP 404"):
        fetch(NAME, dest_dir=tmp_path / "a", registry=registry_for(base))
    assert list((tmp_path / "a").iterdir()) == []  # the partial file is gone
    with pytest.raises(WeightsError, match="unknown checkpoint 'nope'"):
        fetch("nope", dest_dir=tmp_path, registry=registry_for(base))
    present = tmp_path / "b" / CHECKPOINTS[NAME].filename
    present.parent.mkdir()
    present.write_bytes(b"old")
    serve(folder, b"new")
    assert fetch(NAME, dest_dir=present.parent, registry=registry_for(base)).read_bytes() == b"old"
    assert fetch(NAME, dest_dir=present.parent, registry=registry_for(base), force=True).read_bytes() == b"new"


def test_verify_checks_layout_and_presence(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VDP_MODEL_DIR", str(tmp_path))
    with pytest.raises(WeightsError, match=r"not found at .*rvm_mobilenetv3\.pth; get it with `vdp models fetch"):
        verify(NAME)
    torch.save({"backbone.bogus": torch.zeros(2)}, tmp_path / CHECKPOINTS[NAME].filename)
    with pytest.raises(WeightsError, match=r"is not a rvm_mobilenetv3 checkpoint: missing keys \(380\).*"
                                           r"unexpected keys \(1\): backbone\.bogus"):
        verify(NAME)
    # no shipped manifest for vitb: the layout comes from our model
    torch.save({"pretrained.cls_token": torch.zeros(1, 1, 384)}, tmp_path / CHECKPOINTS["vitb"].filename)
    with pytest.raises(WeightsError, match=r"pretrained\.cls_token: \[1, 1, 384\] vs expected \[1, 1, 768\]"):
        verify("vitb")
