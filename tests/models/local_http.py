"""A local HTTP server serving a synthetic checkpoint, for fetch tests (never the real network).

Import the fixtures (`www`, `checkpoint_bytes`) into a test module to use them.
"""
from __future__ import annotations

import dataclasses
import http.server
import threading
from pathlib import Path
from typing import Iterator

import pytest
import torch

from vdp.models.state_dict import MANIFEST_DIR
from vdp.models.synthetic import load_manifest, synthetic_state_dict
from vdp.models.weights import CHECKPOINTS, Checkpoint

NAME = "rvm_mobilenetv3"  # has a shipped manifest and a small (15 MB) state dict


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def www(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """(base URL, served folder) of a local HTTP server on 127.0.0.1."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    folder = tmp_path / "www"
    folder.mkdir()
    handler = lambda *a, **kw: _QuietHandler(*a, directory=str(folder), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A synthetic checkpoint with the official rvm_mobilenetv3 layout."""
    path = tmp_path_factory.mktemp("ckpt") / "rvm.pth"
    torch.save(synthetic_state_dict(load_manifest(MANIFEST_DIR / CHECKPOINTS[NAME].manifest)), path)
    return path.read_bytes()


def registry_for(base: str, **changes) -> dict[str, Checkpoint]:
    """A one-entry registry whose NAME checkpoint downloads from `base` (plus field `changes`)."""
    return {NAME: dataclasses.replace(CHECKPOINTS[NAME], url=f"{base}/{CHECKPOINTS[NAME].filename}", **changes)}


def serve(folder: Path, data: bytes) -> None:
    """Put `data` where the server serves NAME's file."""
    (folder / CHECKPOINTS[NAME].filename).write_bytes(data)
