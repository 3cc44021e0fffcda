"""Real jobs through a real gateway (uvicorn on 127.0.0.1, local Ray) and the SDK."""
from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import MEDIA
from tests.service.gateway import BEAR, LONG, TOKEN, depth_spec
from vdp.client import ConflictError, JobCancelledError, NotFoundError
from vdp.client.sse import parse_events


def test_full_lifecycle_through_sdk(client, tmp_path):
    # A local file given as a Path is uploaded first; outputs include a folder (ZIP download).
    spec = depth_spec("placeholder", outputs=[{"kind": "depth_npz"}, {"kind": "depth_png16"}])
    job = client.submit(Path(MEDIA / BEAR), spec=spec)
    assert job.last_status.state == "queued"
    assert job.last_status.input.startswith("upload:")

    seen = list(job.events(timeout_s=180))
    final = seen[-1]
    assert final.state == "succeeded", final.error
    assert [s.version for s in seen] == sorted({s.version for s in seen})
    assert {p.stage: p.frames_done for p in final.progress} == {"decode": 30, "depth": 30, "write": 30}
    assert final.started_at is not None and final.finished_at >= final.started_at >= final.created_at
    assert sorted(final.outputs) == ["depth.npz", "depth_png16"]
    assert job.status().state == "succeeded"

    names = {o.name: o for o in job.outputs()}
    assert {"depth.npz", "depth_png16", "report.json", "spec.json"} <= set(names)
    assert names["depth_png16"].type == "directory"

    paths = job.download(tmp_path / "dl")
    with np.load(tmp_path / "dl" / "depth.npz") as npz:
        depth = npz[npz.files[0]]
    assert depth.shape[0] == 30 and np.isfinite(depth).all()
    pngs = sorted((tmp_path / "dl" / "depth_png16").iterdir())
    assert len(pngs) == 30 and all(p.suffix == ".png" for p in pngs)
    report = json.loads((tmp_path / "dl" / "report.json").read_text())
    assert report["status"] == "succeeded" and report["frames"] == 30
    assert sorted(p.name for p in paths) == sorted(names)

    with pytest.raises(ConflictError, match="already succeeded"):
        job.cancel()
    job.delete()
    with pytest.raises(NotFoundError, match="no job with id"):
        job.status()


def test_download_supports_range_requests(client, http, tmp_path):
    job = client.submit(BEAR, spec=depth_spec(BEAR, max_frames=8))
    assert job.wait(180).state == "succeeded"
    url = f"/v1/jobs/{job.id}/outputs/depth.npz"
    whole = http.get(url)
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    part = http.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"

    # An interrupted download resumes from the partial file.
    (tmp_path / "depth.npz.part").write_bytes(whole.content[:1000])
    job.download(tmp_path, names=["depth.npz"])
    assert (tmp_path / "depth.npz").read_bytes() == whole.content

    spec_json = http.get(f"/v1/jobs/{job.id}/outputs/spec.json")
    assert spec_json.headers["content-type"].startswith("application/json")
    assert json.loads(spec_json.content)["max_frames"] == 8


def test_sse_progress_is_monotone_and_ends_with_final_state(gateway, http):
    created = http.post("/v1/jobs", json=depth_spec(LONG, max_frames=96))
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    statuses = []
    with http.stream("GET", f"/v1/jobs/{job_id}/events", timeout=180) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for event in parse_events(r.iter_lines()):
            if event is not None:
                assert event.event == "status"
                statuses.append(json.loads(event.data))
    # The stream closed by itself after the final state.
    assert statuses[-1]["state"] == "succeeded"
    assert all(s["state"] in ("queued", "running") for s in statuses[:-1])
    versions = [s["version"] for s in statuses]
    assert versions == sorted(set(versions))
    running = [s for s in statuses if s["progress"]]
    assert len(running) >= 3, "expected several progress events for a 96-frame job"
    for stage in ("decode", "depth", "write"):
        done = [next(p["frames_done"] for p in s["progress"] if p["stage"] == stage) for s in running]
        assert done == sorted(done), f"{stage} progress went backwards: {done}"
        assert done[-1] == 96
    last = {p["stage"]: p for p in statuses[-1]["progress"]}
    assert last["write"]["frames_total"] == 96 and last["write"]["fps"] > 0


def test_cancel_stops_a_running_job_within_seconds_and_frees_the_actors(client):
    long_job = client.submit(LONG, spec=depth_spec(LONG))
    queued_job = client.submit(BEAR, spec=depth_spec(BEAR))
    for status in long_job.events(timeout_s=180):
        if any(p.stage == "write" and p.frames_done > 0 for p in status.progress):
            break
    assert status.state == "running"
    # Concurrency is 1: the second job waits in the queue, and cancelling it is immediate.
    assert queued_job.status().state == "queued"
    assert queued_job.cancel().state == "cancelled"

    t0 = time.monotonic()
    assert long_job.cancel().cancel_requested
    with pytest.raises(JobCancelledError):
        long_job.wait(timeout_s=30)
    assert time.monotonic() - t0 < 10
    final = long_job.status()
    assert final.state == "cancelled" and final.error == "cancelled while running"
    written = next(p.frames_done for p in final.progress if p.stage == "write")
    assert 0 < written < 300

    # The same (named, reused) actors serve the next job.
    after = client.submit(BEAR, spec=depth_spec(BEAR, max_frames=8))
    assert after.wait(180).state == "succeeded"


def test_list_jobs_filters_by_state_and_paginates(client, http):
    ids = []
    blocker = client.submit(LONG, spec=depth_spec(LONG))
    for _ in range(5):
        ids.append(client.submit(BEAR, spec=depth_spec(BEAR)).id)
    for job_id in ids:
        client.job(job_id).cancel()
    blocker.cancel()
    blocker.wait(60, raise_on_failure=False)

    pages, cursor = [], None
    while True:
        params = {"state": "cancelled", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = http.get("/v1/jobs", params=params).json()
        assert len(page["jobs"]) <= 2
        pages.append([j["id"] for j in page["jobs"]])
        assert all(j["state"] == "cancelled" for j in page["jobs"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    listed = [i for p in pages for i in p]
    assert len(listed) == len(set(listed))
    mine = [i for i in listed if i in ids]
    assert mine == ids[::-1], "newest first"
    assert [j.id for j in client.jobs(state="cancelled") if j.id in ids] == ids[::-1]


def test_health_readiness_and_metrics(gateway, http):
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ray"] is True
    assert http.get("/v1/jobs/" + "0" * 32).status_code == 404
    metrics = http.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    assert 'vdp_jobs{state="succeeded"}' in text
    assert 'vdp_http_requests_total{method="GET",route="/v1/jobs/{job_id}",status="404"}' in text
    assert "vdp_ray_connected 1.0" in text
    with gateway.http(token=None) as anonymous:
        assert anonymous.get("/metrics").status_code == 401
        assert anonymous.get("/healthz").status_code == 200


def test_cli_submit_wait_status_download_cancel(gateway, tmp_path, capsys):
    import argparse

    from vdp.cli.service import add_parser

    parser = argparse.ArgumentParser(prog="vdp")
    add_parser(parser.add_subparsers(dest="command"))

    def run(*argv: str) -> int:
        args = parser.parse_args([*argv[:1], "--url", gateway.url, "--token", TOKEN, *argv[1:]])
        return args.func(args)

    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(depth_spec("ignored", max_frames=8)))
    assert run("submit", str(MEDIA / BEAR), "--spec", str(spec_file), "--wait", "--timeout", "180") == 0
    out = capsys.readouterr()
    job_id = out.out.splitlines()[0].strip()
    assert "succeeded" in out.out and "write 8/8" in out.err

    assert run("status", job_id, "--json") == 0
    assert json.loads(capsys.readouterr().out)["state"] == "succeeded"
    assert run("download", job_id, "--out", str(tmp_path / "out"), "--name", "depth.npz") == 0
    assert (tmp_path / "out" / "depth.npz").is_file()
    with pytest.raises(ConflictError, match="already succeeded"):
        run("cancel", job_id)
    assert run("wait", job_id) == 0
    assert zipfile.is_zipfile(tmp_path / "out" / "depth.npz")
