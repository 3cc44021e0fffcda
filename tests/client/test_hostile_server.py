"""The SDK against a hostile gateway: a real HTTP server on loopback that names outputs
``../../x`` or sends bytes that do not match its digest (issue 18, items 10 and 11)."""
from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest

from vdp.client import Client, DownloadVerificationError, Job, UnsafeOutputNameError

JOB = "b" * 32


class Hostile:
    """What the server answers: output names, each output's bytes, and the digest it claims."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.claimed: dict[str, bytes] = {}
        self.requests: list[str] = []


@pytest.fixture()
def hostile():
    state = Hostile()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            state.requests.append(self.path)
            prefix = f"/v1/jobs/{JOB}/outputs"
            if self.path == prefix:
                listing = {"job_id": JOB, "state": "succeeded", "outputs": [
                    {"name": n, "type": "file", "size_bytes": len(b), "media_type": "x"}
                    for n, b in state.files.items()]}
                return self._send(200, json.dumps(listing).encode(), {})
            name = unquote(self.path[len(prefix) + 1:])
            body = state.files.get(name)
            if body is None:
                return self._send(404, b'{"detail": "no", "code": "not_found"}', {})
            digest = state.claimed.get(name, hashlib.sha256(body).digest())
            self._send(200, body, {"ETag": '"e1"',
                                   "Repr-Digest": f"sha-256=:{base64.b64encode(digest).decode()}:"})

        def _send(self, status: int, body: bytes, headers: dict) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("name", ["../../escaped.txt", "../escaped.txt", "/tmp/escaped_abs.txt", "..",
                                  ".", "a/../../escaped.txt", "sub/inner.txt", "..\\escaped.txt",
                                  "C:escaped.txt", "x\x00y"])
def test_output_names_that_leave_the_folder_are_refused(hostile, tmp_path, name):
    hostile.files = {"fine.txt": b"ok", name: b"pwned"}
    out = tmp_path / "deep" / "target"
    with Client(hostile.url) as c:
        with pytest.raises(UnsafeOutputNameError, match="would land outside"):
            Job(c, JOB).download(out)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(p.parent == out and p.read_bytes() != b"pwned" for p in written), written
    assert not Path("/tmp/escaped_abs.txt").exists()
    assert not any(r.endswith("escaped.txt") for r in hostile.requests)


def test_bytes_that_do_not_match_the_digest_are_refused_after_one_fresh_try(hostile, tmp_path):
    hostile.files = {"depth.npz": b"real bytes" * 100}
    hostile.claimed = {"depth.npz": hashlib.sha256(b"something else").digest()}
    with Client(hostile.url) as c:
        with pytest.raises(DownloadVerificationError, match="does not match"):
            Job(c, JOB).download(tmp_path)
    assert hostile.requests.count(f"/v1/jobs/{JOB}/outputs/depth.npz") == 2
    assert not (tmp_path / "depth.npz").exists()


def test_a_stale_partial_file_without_its_etag_is_not_resumed(hostile, tmp_path):
    payload = bytes(range(256)) * 64
    hostile.files = {"depth.npz": payload}
    (tmp_path / "depth.npz.part").write_bytes(b"\xff" * (len(payload) - 10))  # other content
    with Client(hostile.url) as c:
        Job(c, JOB).download(tmp_path)
    assert (tmp_path / "depth.npz").read_bytes() == payload
