"""The SDK against a scripted gateway (httpx.MockTransport): requests sent, errors mapped,
event streams resumed across drops, downloads resumed with ranges."""
from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime, timezone

import httpx
import pytest

from vdp.client import (
    Client, ConflictError, GatewayUnavailableError, InvalidRequestError, Job, JobCancelledError,
    JobFailedError, JobTimeoutError, NotFoundError, PayloadTooLargeError, ServerError,
)

JOB = "a" * 32
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc).isoformat()


def status(state: str = "queued", version: int = 0, **extra) -> dict:
    return {"id": JOB, "state": state, "input": "clip.mp4", "created_at": NOW, "updated_at": NOW,
            "version": version, "spec": {"input": "clip.mp4"}, **extra}


def sse(*statuses: dict) -> bytes:
    return "".join(f"id: {s['version']}\nevent: status\ndata: {json.dumps(s)}\n\n"
                   for s in statuses).encode()


def client_for(handler) -> Client:
    return Client("http://gw", token="t" * 16, transport=httpx.MockTransport(handler))


@pytest.mark.parametrize("code,exc", [(400, InvalidRequestError), (422, InvalidRequestError),
                                      (404, NotFoundError), (409, ConflictError),
                                      (413, PayloadTooLargeError), (502, ServerError)])
def test_error_statuses_map_to_typed_exceptions(code, exc):
    c = client_for(lambda r: httpx.Response(code, json={"detail": "it went wrong", "code": "why"}))
    with pytest.raises(exc, match=r"it went wrong \(HTTP \d+, why\)") as info:
        c.job(JOB)
    assert (info.value.status, info.value.code, info.value.detail) == (code, "why", "it went wrong")


def test_non_json_error_body_and_unreachable_gateway():
    c = client_for(lambda r: httpx.Response(503, text="upstream down"))
    with pytest.raises(ServerError, match="upstream down"):
        c.health()

    def refuse(request):
        raise httpx.ConnectError("connection refused")

    with pytest.raises(GatewayUnavailableError, match="cannot reach the gateway"):
        client_for(refuse).health()


def test_submit_preset_sends_token_params_and_overrides():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json=status())

    job = client_for(handler).submit("clip.mp4", preset="depth", overrides={"max_frames": 5})
    (req,) = seen
    assert req.url.path == "/v1/jobs" and req.url.params["preset"] == "depth"
    assert req.headers["authorization"] == "Bearer " + "t" * 16
    assert json.loads(req.content) == {"input": "clip.mp4", "max_frames": 5}
    assert job.id == JOB and job.last_status.state == "queued"


def test_submit_a_local_path_uploads_it_first(tmp_path):
    video = tmp_path / "my clip.webm"
    video.write_bytes(b"v" * 1000)
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, request))
        if request.url.path == "/v1/uploads":
            assert request.read() == b"v" * 1000
            return httpx.Response(201, json={
                "id": "b" * 32, "input": "upload:" + "b" * 32, "filename": "my_clip.webm",
                "size_bytes": 1000, "created_at": NOW, "video": {
                    "num_frames": 3, "fps": 30.0, "duration_seconds": 0.1, "width": 8,
                    "height": 8, "codec": "vp9"}})
        return httpx.Response(201, json=status())

    client_for(handler).submit(video, spec={"input": "ignored", "max_frames": 2})
    assert [p for p, _ in seen] == ["/v1/uploads", "/v1/jobs"]
    upload = seen[0][1]
    assert upload.url.params["filename"] == "my clip.webm" and upload.headers["content-length"] == "1000"
    assert json.loads(seen[1][1].content) == {"input": "upload:" + "b" * 32, "max_frames": 2}


def test_submit_argument_errors():
    c = client_for(lambda r: httpx.Response(500))
    with pytest.raises(ValueError, match="exactly one of preset= or spec="):
        c.submit("x.mp4")
    with pytest.raises(ValueError, match="no input"):
        c.submit(spec={"max_frames": 3})


def test_events_survive_a_dropped_stream_and_skip_repeats(monkeypatch):
    monkeypatch.setattr("vdp.client.client.time.sleep", lambda s: None)
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx.Response(200, content=sse(status("running", 1), status("running", 2)))
        if calls["n"] == 2:
            raise httpx.ReadError("gateway restarted")
        return httpx.Response(200, content=sse(status("running", 2), status("succeeded", 5)))

    c = client_for(handler)
    seen = [s.version for s in Job(c, JOB).events()]
    assert seen == [1, 2, 5] and calls["n"] == 3


def test_wait_raises_for_failed_and_cancelled_jobs():
    for final, exc, text in [(status("failed", 3, error="DecodeError: bad"), JobFailedError, "DecodeError: bad"),
                             (status("cancelled", 3), JobCancelledError, "was cancelled")]:
        c = client_for(lambda r, f=final: httpx.Response(200, content=sse(f)))
        with pytest.raises(exc, match=text):
            Job(c, JOB).wait(10)
        assert Job(c, JOB).wait(10, raise_on_failure=False).state == final["state"]


def test_wait_times_out():
    c = client_for(lambda r: httpx.Response(200, content=sse(status("queued", 1))))
    with pytest.raises(JobTimeoutError, match="not finished after 0.3 s \\(state: queued\\)"):
        Job(c, JOB).wait(0.3)


def test_download_resumes_partial_files_and_unpacks_folders(tmp_path):
    payload = bytes(range(256)) * 40
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("000000.png", b"png0")
        zf.writestr("000001.png", b"png1")
    ranges = []

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/outputs"):
            return httpx.Response(200, json={"job_id": JOB, "state": "succeeded", "outputs": [
                {"name": "depth.npz", "type": "file", "size_bytes": len(payload), "media_type": "x"},
                {"name": "frames", "type": "directory", "size_bytes": 8, "media_type": "application/zip"}]})
        if path.endswith("/depth.npz"):
            ranges.append(request.headers.get("range"))
            honoured = "range" in request.headers and request.headers.get("if-range") == '"v1"'
            start = int(request.headers["range"][6:-1]) if honoured else 0
            return httpx.Response(206 if start else 200, content=payload[start:],
                                  headers={"ETag": '"v1"'})
        return httpx.Response(200, content=archive.getvalue())

    # A partial file saved with the output's ETag is resumed (If-Range guards it).
    (tmp_path / "depth.npz.part").write_bytes(payload[:1000])
    (tmp_path / "depth.npz.part.etag").write_text('"v1"')
    paths = Job(client_for(handler), JOB).download(tmp_path)
    assert ranges == ["bytes=1000-"]
    assert not (tmp_path / "depth.npz.part.etag").exists()
    assert (tmp_path / "depth.npz").read_bytes() == payload
    assert not (tmp_path / "depth.npz.part").exists()
    assert (tmp_path / "frames" / "000001.png").read_bytes() == b"png1"
    assert paths == [tmp_path / "depth.npz", tmp_path / "frames"]
    with pytest.raises(FileNotFoundError, match="no output 'nope'"):
        Job(client_for(handler), JOB).download(tmp_path, names=["nope"])


def test_unsafe_archive_members_are_refused(tmp_path):
    from vdp.client.download import safe_extract as _safe_extract

    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../evil.txt", b"x")
    with pytest.raises(ValueError, match="unsafe member"):
        _safe_extract(bad, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()
