"""A gateway restart loses nothing: a job running at shutdown resumes from its ledger (its
finished chunks are not computed again) and a queued job runs after it."""
from __future__ import annotations

import json
import sqlite3

import pytest

from tests.service.gateway import BEAR, LONG, TOKEN, Gateway, depth_spec
from vdp.client import Client


@pytest.mark.slow
def test_restarted_gateway_finishes_jobs_started_before(tmp_path, roots):
    data = tmp_path / "data"
    first = Gateway(data, [roots["root"]]).start()
    try:
        with Client(first.url, token=TOKEN) as c:
            chunked = depth_spec(LONG, max_frames=128,
                                 chunking={"enabled": True, "chunk_frames": 32, "overlap_frames": 8})
            running = c.submit(LONG, spec=chunked)
            queued = c.submit(BEAR, spec=depth_spec(BEAR, max_frames=8))
            for status in running.events(timeout_s=180):
                if any(p.stage == "write" and p.frames_done >= 32 for p in status.progress):
                    break
            assert status.state == "running"
    finally:
        assert first.stop() in (0, -15), first.log_tail()  # uvicorn re-raises SIGTERM after a clean shutdown

    with sqlite3.connect(data / "vdp.db") as db:
        rows = dict(db.execute("SELECT id, state FROM jobs").fetchall())
    assert rows == {running.id: "queued", queued.id: "queued"}, "shutdown must put the running job back"

    # Same data directory, new process (and a new Ray): both jobs finish, in submission order.
    second = Gateway(data, [roots["root"]]).start()
    try:
        with Client(second.url, token=TOKEN) as c:
            resumed = c.job(running.id).wait(timeout_s=240)
            assert resumed.state == "succeeded"
            assert resumed.attempts == 2
            assert {p.stage: p.frames_done for p in resumed.progress}["write"] == 128
            later = c.job(queued.id).wait(timeout_s=120)
            assert later.state == "succeeded" and later.started_at >= resumed.finished_at
            assert [o.name for o in c.job(running.id).outputs()].count("depth.npz") == 1
        report = json.loads((data / "jobs" / running.id / "report.json").read_text())
        assert report["resumed"] is True
        assert 0 in report["chunks"]["reused"], "the chunk finished before the restart was replayed"
    finally:
        assert second.stop() in (0, -15), second.log_tail()
