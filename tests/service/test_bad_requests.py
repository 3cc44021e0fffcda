"""Every way to get a request wrong gets the right status and a clear message (never a traceback)."""
from __future__ import annotations

import os

import httpx
import pytest

from tests.conftest import MEDIA
from tests.service.conftest import MAX_UPLOAD_BYTES
from tests.service.gateway import BEAR, LONG, TOKEN, depth_spec

UNKNOWN_ID = "0123456789abcdef0123456789abcdef"


def check(response: httpx.Response, status: int, code: str, message: str) -> dict:
    """The error body is ``{"detail", "code"}``, says `message`, and carries no traceback."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail", "code"}
    assert body["code"] == code, body
    assert message in body["detail"], body["detail"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body


@pytest.fixture(scope="module")
def finished_job(gateway) -> str:
    from vdp.client import Client

    with Client(gateway.url, token=TOKEN) as c:
        job = c.submit(BEAR, spec=depth_spec(BEAR, max_frames=4))
        assert job.wait(180).state == "succeeded"
        return job.id


def test_missing_token(gateway):
    with gateway.http(token=None) as anonymous:
        r = anonymous.get("/v1/jobs")
    check(r, 401, "missing_token", "requires a bearer token")
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_wrong_token(gateway):
    with gateway.http(token="x" * len(TOKEN)) as wrong:
        check(wrong.get("/v1/jobs"), 401, "invalid_token", "not valid")


def test_not_a_bearer_scheme(gateway):
    r = httpx.get(f"{gateway.url}/v1/jobs", headers={"Authorization": f"Basic {TOKEN}"})
    check(r, 401, "missing_token", "'Bearer <token>'")


def test_dotdot_path(http):
    check(http.post("/v1/jobs", json=depth_spec(f"../outside/secret.webm")), 400, "bad_path", "'..'")


def test_absolute_path_outside_roots(http, roots):
    r = http.post("/v1/jobs", json=depth_spec(str(roots["outside"] / "secret.webm")))
    check(r, 403, "path_forbidden", "outside the gateway's input roots")


def test_symlink_escape(http):
    check(http.post("/v1/jobs", json=depth_spec("escape.webm")), 403, "path_forbidden", "symbolic link")


def test_absolute_path_inside_roots_is_accepted_and_missing_file_is_422(http, roots):
    check(http.post("/v1/jobs", json=depth_spec("no_such_clip.mp4")), 422, "input_not_found", "not found")
    r = http.post("/v1/jobs", json=depth_spec(str(roots["root"] / BEAR), max_frames=2))
    assert r.status_code == 201
    http.post(f"/v1/jobs/{r.json()['id']}/cancel")


def test_oversize_upload_declared(http):
    data = os.urandom(MAX_UPLOAD_BYTES + 1)
    check(http.post("/v1/uploads", content=data), 413, "upload_too_large", "exceeds the limit")


def test_oversize_upload_streamed_without_length(http):
    def chunks():
        for _ in range(MAX_UPLOAD_BYTES // 65536 + 2):
            yield b"\0" * 65536

    check(http.post("/v1/uploads", content=chunks()), 413, "upload_too_large", "exceeds the limit")


def test_empty_upload(http):
    check(http.post("/v1/uploads", content=b""), 400, "empty_upload", "empty")


def test_non_video_upload(http):
    r = http.post("/v1/uploads", params={"filename": "notes.mp4"}, content=b"this is not a video" * 100)
    check(r, 415, "not_a_video", "not a decodable video")


def test_invalid_json(http):
    r = http.post("/v1/jobs", content=b'{"input": "x.mp4",', headers={"Content-Type": "application/json"})
    check(r, 400, "invalid_json", "not valid JSON")


def test_spec_not_an_object(http):
    check(http.post("/v1/jobs", json=["input", BEAR]), 422, "invalid_spec", "must be a JSON object")


def test_unknown_preset(http):
    r = http.post("/v1/jobs", params={"preset": "no-such-preset"}, json={"input": BEAR})
    check(r, 422, "unknown_preset", "unknown preset 'no-such-preset'; available: ")


def test_invalid_spec_values(http):
    spec = depth_spec(BEAR)
    spec["stages"]["depth"]["input_size"] = 5
    spec["outputs"] = [{"kind": "alpha_mp4"}]
    body = check(http.post("/v1/jobs", json=spec), 422, "invalid_spec", "stages.depth.input_size")
    assert "greater than or equal to 28" in body["detail"]


def test_output_without_producing_stage(http):
    spec = depth_spec(BEAR, outputs=[{"kind": "alpha_mp4"}])
    check(http.post("/v1/jobs", json=spec), 422, "invalid_spec", "output alpha_mp4 needs layer 'alpha', which no stage of this job produces")


def test_checkpoint_path_in_spec(http):
    spec = depth_spec(BEAR)
    spec["stages"]["depth"]["checkpoint"] = "/etc/passwd"
    check(http.post("/v1/jobs", json=spec), 422, "invalid_spec", "checkpoint paths cannot be set")


def test_unknown_upload_id(http):
    check(http.post("/v1/jobs", json=depth_spec("upload:" + UNKNOWN_ID)), 422, "unknown_upload", "no upload")


def test_unknown_job_id(http):
    check(http.get(f"/v1/jobs/{UNKNOWN_ID}"), 404, "not_found", "no job with id")
    check(http.get(f"/v1/jobs/{UNKNOWN_ID}/events"), 404, "not_found", "no job with id")
    check(http.get(f"/v1/jobs/{UNKNOWN_ID}/outputs"), 404, "not_found", "no job with id")
    check(http.post(f"/v1/jobs/{UNKNOWN_ID}/cancel"), 404, "not_found", "no job with id")
    check(http.delete(f"/v1/jobs/{UNKNOWN_ID}"), 404, "not_found", "no job with id")


def test_cancel_of_finished_job(http, finished_job):
    check(http.post(f"/v1/jobs/{finished_job}/cancel"), 409, "conflict", "already succeeded")


def test_second_cancel(http):
    job_id = http.post("/v1/jobs", json=depth_spec(LONG)).json()["id"]
    first = http.post(f"/v1/jobs/{job_id}/cancel")
    assert first.status_code == 200
    # Cancelled at once if still queued, else stopping: either way a second cancel conflicts.
    check(http.post(f"/v1/jobs/{job_id}/cancel"), 409, "conflict", "already")


def test_delete_of_unfinished_job(http):
    blocker = http.post("/v1/jobs", json=depth_spec(LONG)).json()["id"]
    try:
        check(http.delete(f"/v1/jobs/{blocker}"), 409, "conflict", "cancel it")
    finally:
        http.post(f"/v1/jobs/{blocker}/cancel")


def test_download_of_missing_output(http, finished_job):
    check(http.get(f"/v1/jobs/{finished_job}/outputs/depth.mp4"), 404, "not_found", "no output named 'depth.mp4'")


def test_download_name_with_slash(http, finished_job):
    r = http.get(f"/v1/jobs/{finished_job}/outputs/..%2Fvdp.db")
    check(r, 400, "bad_name", "without '/'")
    r = http.get(f"/v1/jobs/{finished_job}/outputs/a/b")
    check(r, 400, "bad_name", "without '/'")


def test_download_hidden_name(http, finished_job):
    check(http.get(f"/v1/jobs/{finished_job}/outputs/.archives"), 400, "bad_name", "not a valid output name")


def test_bad_and_unsatisfiable_ranges(http, finished_job):
    url = f"/v1/jobs/{finished_job}/outputs/spec.json"
    check(http.get(url, headers={"Range": "lines=1-2"}), 400, "bad_range", "Only support bytes range")
    r = http.get(url, headers={"Range": "bytes=99999999-"})
    check(r, 416, "range_not_satisfiable", "outside the file")
    assert r.headers["content-range"].startswith("bytes */")


def test_invalid_query_parameters(http):
    check(http.get("/v1/jobs", params={"limit": 0}), 422, "invalid_request", "limit")
    check(http.get("/v1/jobs", params={"state": "exploded"}), 422, "invalid_request", "state")
    check(http.get("/v1/jobs", params={"cursor": "abc"}), 422, "invalid_request", "cursor")


def test_unknown_route_and_method(http):
    check(http.get("/v1/nothing-here"), 404, "not_found", "Not Found")
    check(http.put("/v1/jobs"), 405, "method_not_allowed", "Method Not Allowed")


def test_upload_then_submit_by_upload_id(http):
    r = http.post("/v1/uploads", params={"filename": "../../evil name!.webm"},
                  content=(MEDIA / BEAR).read_bytes())
    assert r.status_code == 201, r.text
    info = r.json()
    assert info["filename"] == "evil_name_.webm"  # sanitised: no path, no odd characters
    assert info["video"]["num_frames"] == 30 and info["input"] == f"upload:{info['id']}"
    job = http.post("/v1/jobs", json=depth_spec(info["input"], max_frames=2))
    assert job.status_code == 201
    check(http.delete(f"/v1/uploads/{info['id']}"), 409, "conflict", "unfinished jobs")
    http.post(f"/v1/jobs/{job.json()['id']}/cancel")
