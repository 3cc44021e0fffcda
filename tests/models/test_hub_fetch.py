"""`vdp models fetch` of Hub-hosted checkpoints through huggingface_hub, against a local server
speaking the Hub's file protocol (HEAD for metadata, GET with Range) as a mirror at
``HF_ENDPOINT`` would: cache, resume, token. Never the real network."""
from __future__ import annotations

import dataclasses
import hashlib
import http.server
import threading
from pathlib import Path

import pytest

pytest.importorskip("huggingface_hub")

from tests.models.local_http import NAME, checkpoint_bytes  # noqa: F401,E402
from vdp.errors import WeightsError  # noqa: E402
from vdp.models.fetch import fetch, sidecar_path  # noqa: E402
from vdp.models.weights import CHECKPOINTS  # noqa: E402

REPO_ID = "test-org/Test-Checkpoints"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    """Serves one file at ``/<REPO_ID>/resolve/main/<filename>``; records every request."""

    def __init__(self, filename: str, data: bytes, *, token: str | None = None) -> None:
        self.filename, self.data, self.token = filename, data, token
        self.requests: list[dict] = []
        self.cut_next_get = False
        self.sent_before_cut = 0
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                hub.handle(self, body=False)

            def do_GET(self) -> None:
                hub.handle(self, body=True)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def handle(self, req: http.server.BaseHTTPRequestHandler, *, body: bool) -> None:
        self.requests.append({"method": req.command, "path": req.path,
                              "auth": req.headers.get("Authorization"), "range": req.headers.get("Range")})
        if self.token and req.headers.get("Authorization") != f"Bearer {self.token}":
            req.send_response(401)
            req.send_header("Content-Length", "0")
            req.end_headers()
            return
        if req.path != f"/{REPO_ID}/resolve/main/{self.filename}":
            req.send_response(404)
            req.send_header("Content-Length", "0")
            req.end_headers()
            return
        start = 0
        rng = req.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
        part = self.data[start:]
        req.send_response(206 if start else 200)
        req.send_header("X-Repo-Commit", COMMIT)
        req.send_header("ETag", f'"{hashlib.sha256(self.data).hexdigest()}"')
        req.send_header("Accept-Ranges", "bytes")
        req.send_header("Content-Length", str(len(part)))
        if start:
            req.send_header("Content-Range", f"bytes {start}-{len(self.data) - 1}/{len(self.data)}")
        req.end_headers()
        if not body:
            return
        if self.cut_next_get:  # send 80 %, then drop the connection
            self.cut_next_get = False
            self.sent_before_cut = len(part) * 4 // 5
            req.wfile.write(part[: self.sent_before_cut])
            req.wfile.flush()
            req.close_connection = True
            req.connection.shutdown(2)
            return
        req.wfile.write(part)

    def gets(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "GET"]


@pytest.fixture
def hub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                "HF_HUB_OFFLINE", "HF_HUB_CACHE", "HF_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return tmp_path / "hf"


def registry() -> dict:
    ckpt = CHECKPOINTS[NAME]
    return {NAME: dataclasses.replace(ckpt, url=f"https://huggingface.co/{REPO_ID}/resolve/main/{ckpt.filename}")}


def test_fetch_goes_through_the_mirror_with_the_token_and_reuses_the_cache(
        hub_env, checkpoint_bytes, tmp_path, monkeypatch):
    hub = FakeHub(CHECKPOINTS[NAME].filename, checkpoint_bytes, token="hf_secret")
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    path = fetch(NAME, dest_dir=tmp_path / "models", registry=registry(), timeout_s=10)
    assert path.read_bytes() == checkpoint_bytes
    digest = hashlib.sha256(checkpoint_bytes).hexdigest()
    assert sidecar_path(path).read_text().split()[0] == digest
    assert len(hub.gets()) == 1 and all(r["auth"] == "Bearer hf_secret" for r in hub.requests)
    cached = list((hub_env / "hub").rglob(CHECKPOINTS[NAME].filename))
    assert cached and cached[0].read_bytes() == checkpoint_bytes  # the shared Hugging Face cache
    again = fetch(NAME, dest_dir=tmp_path / "other", registry=registry(), timeout_s=10)
    assert again.read_bytes() == checkpoint_bytes and len(hub.gets()) == 1  # from the cache


def test_an_interrupted_download_resumes(hub_env, checkpoint_bytes, tmp_path, monkeypatch):
    hub = FakeHub(CHECKPOINTS[NAME].filename, checkpoint_bytes)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    hub.cut_next_get = True
    try:
        fetch(NAME, dest_dir=tmp_path / "models", registry=registry(), timeout_s=10)
    except WeightsError:
        fetch(NAME, dest_dir=tmp_path / "models", registry=registry(), timeout_s=10)  # the user retries
    path = tmp_path / "models" / CHECKPOINTS[NAME].filename
    assert path.read_bytes() == checkpoint_bytes
    gets = hub.gets()
    assert len(gets) == 2 and gets[0]["range"] is None
    # huggingface_hub keeps what it had written (whole 10 MB chunks) and asks only for the rest
    start = int(gets[1]["range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < start <= hub.sent_before_cut


def test_a_refused_token_is_a_clear_error(hub_env, checkpoint_bytes, tmp_path, monkeypatch):
    hub = FakeHub(CHECKPOINTS[NAME].filename, checkpoint_bytes, token="hf_right")
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(WeightsError, match=r"HTTP 401: set HF_TOKEN"):
        fetch(NAME, dest_dir=tmp_path / "models", registry=registry(), timeout_s=10)
    assert not (tmp_path / "models" / CHECKPOINTS[NAME].filename).exists()
