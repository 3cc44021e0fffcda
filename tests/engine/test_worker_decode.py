"""Decode next to the model: the first stage's actor decodes its chunk's frames from the input's path."""
from __future__ import annotations

import json
import os
import shutil
import threading
import time
from dataclasses import replace

import pytest
import torch

from vdp.engine.job import run_job
from vdp.engine.job_run import JobRun
from vdp.engine import kept_sources
from vdp.engine.kept_sources import SourceCache
from vdp.engine.worker_decode import DecodeRequest, WorkerDecoder, check_readable, tickets
from vdp.io import iter_batches
from tests.engine.test_seams import CLIP, affine_plans, layers, rel_err, sequential, spec  # noqa: F401

PREVIEW = "depth_preview.mp4"
CHUNKING = {"enabled": True, "chunk_frames": 16, "overlap_frames": 8}


def where_replicas(report) -> dict[str, tuple[str, int]]:
    return {r["name"]: (r["node_id"], r["pid"]) for r in report.placement["replicas"]["depth"]}


def test_tickets_cut_a_range_as_the_decoder_does():
    request = DecodeRequest(str(CLIP), 0, start=5, stop=30, batch_frames=8, timeout_s=60)
    got = [(t.first, t.stop) for t in tickets(request)]
    want = [(int(b.indices[0]), int(b.indices[-1]) + 1)
            for b in iter_batches(CLIP, batch_frames=8, start_frame=5, stop_frame=30)]
    assert got == want == [(5, 13), (13, 21), (21, 29), (29, 30)]


def test_check_readable_names_a_missing_or_different_file(tmp_path):
    assert check_readable(str(CLIP), os.path.getsize(CLIP)) == ""
    assert "cannot read" in check_readable(str(tmp_path / "nope.mp4"), 10)
    assert "not the same file" in check_readable(str(CLIP), os.path.getsize(CLIP) + 1)


def decode_run(path, cache: SourceCache, start: int, stop: int, keep_tail: int = 0) -> tuple[dict, list]:
    """One chunk run's batches through a `WorkerDecoder` and its `where`, once the decoder has
    given its source back to `cache`."""
    request = DecodeRequest(str(path), os.path.getsize(path), start=start, stop=stop, batch_frames=8,
                            timeout_s=60, keep_tail=keep_tail)
    decoder = WorkerDecoder(request, "node")
    batches = [decoder.take(t)[0] for t in tickets(request)]
    deadline = time.monotonic() + 30
    while len(cache) == 0 and time.monotonic() < deadline:  # given back once the thread ends
        time.sleep(0.01)
    decoder.stop()
    return decoder.where, batches


def test_a_replica_keeps_the_opened_video_for_its_next_chunk_until_the_file_changes(tmp_path, monkeypatch):
    clip = tmp_path / "clip.mp4"
    shutil.copy(CLIP, clip)
    cache = SourceCache()
    monkeypatch.setattr(kept_sources, "SOURCES", cache)

    def run(start: int, stop: int) -> tuple[str, torch.Tensor]:
        where, batches = decode_run(clip, cache, start, stop)
        return where["source"], torch.cat([b.frames for b in batches])

    def fresh(start: int, stop: int) -> torch.Tensor:
        return torch.cat([b.frames for b in iter_batches(clip, batch_frames=8, start_frame=start, stop_frame=stop)])

    assert run(0, 20)[0] == "opened" and len(cache) == 1
    where, frames = run(30, 45)  # the next chunk: no new open, and the same frames as a fresh decode
    assert where == "kept" and torch.equal(frames, fresh(30, 45))
    st = os.stat(clip)
    os.utime(clip, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the file changed: opened again
    assert run(10, 18)[0] == "opened"


def test_a_replicas_next_chunk_starts_from_the_frames_its_last_chunk_kept(monkeypatch):
    """Consecutive chunk runs on one actor (overlap 12): the second takes the overlap from the
    first one's kept tail (`replayed_frames`) and gives the same batches as a fresh decode."""
    cache = SourceCache()
    monkeypatch.setattr(kept_sources, "SOURCES", cache)
    assert decode_run(CLIP, cache, 0, 40, keep_tail=12)[0]["replayed_frames"] == 0
    where, batches = decode_run(CLIP, cache, 28, 70, keep_tail=12)
    assert where["source"] == "kept" and where["replayed_frames"] == 12
    fresh = list(iter_batches(CLIP, batch_frames=8, start_frame=28, stop_frame=70))
    assert [len(b) for b in batches] == [len(b) for b in fresh]
    assert torch.equal(torch.cat([b.frames for b in batches]), torch.cat([b.frames for b in fresh]))
    assert torch.equal(torch.cat([b.pts_seconds for b in batches]), torch.cat([b.pts_seconds for b in fresh]))


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux-only")
def test_a_cpu_actor_decodes_at_idle_priority_and_gives_the_same_frames():
    request = DecodeRequest(str(CLIP), os.path.getsize(CLIP), start=3, stop=40, batch_frames=8, timeout_s=60)
    decoder = WorkerDecoder(request, "node", idle=True)
    try:
        first, seconds = decoder.take(tickets(request)[0])
        assert seconds > 0
        # the thread has decoded ahead and waits to hand out the next batch: it is still there
        threads = [t for t in threading.enumerate() if t.name == "vdp-decode-idle"]
        assert threads and all(os.sched_getscheduler(t.native_id) == os.SCHED_IDLE for t in threads)
        assert os.sched_getscheduler(0) != os.SCHED_IDLE  # the stage's thread keeps its priority
        frames = torch.cat([first.frames] + [decoder.take(t)[0].frames for t in tickets(request)[1:]])
    finally:
        decoder.stop()
    assert decoder.where["priority"] == "idle"
    fresh = torch.cat([b.frames for b in iter_batches(CLIP, batch_frames=8, start_frame=3, stop_frame=40)])
    assert torch.equal(frames, fresh)


def test_chunks_are_decoded_by_the_actor_that_runs_their_first_stage(tmp_path, sequential, fresh_actors):
    report = run_job(spec(CHUNKING, replicas={"depth": 2}), tmp_path, plans=affine_plans())
    assert rel_err(layers(tmp_path)["depth"], layers(sequential)["depth"]) < 1e-3
    reps = where_replicas(report)
    saved = json.loads((tmp_path / "report.json").read_text())
    runs = saved["chunks"]["runs"]
    assert len(runs) == 4
    for run in runs:
        d = run["decode"]
        assert d["on"] == "worker" and d["device"] == "cpu" and d["source"] in ("opened", "kept"), d
        assert 0 <= d["replayed_frames"] <= CHUNKING["overlap_frames"], d
        assert (d["node_id"], d["pid"]) == reps[run["actors"]["depth"]]  # the chunk's own actor
    assert os.getpid() not in {d["decode"]["pid"] for d in runs}
    assert not any("cannot read the input" in w for w in saved["warnings"])
    assert saved["stages"]["decode"]["frames_done"] == 70 + 3 * 8
    assert saved["placement"]["frames_to_driver"] is False  # depth_npz reads no rgb


def test_results_keep_their_frames_when_an_output_reads_them(tmp_path, fresh_actors):
    from vdp.spec import JobSpec

    data = spec(CHUNKING, replicas={"depth": 2}).model_dump(exclude_none=True)
    data["outputs"] = [{"kind": "depth_npz"}, {"kind": "depth_preview_mp4"}]
    report = run_job(JobSpec.parse(data), tmp_path, plans=affine_plans())
    assert report.status == "succeeded" and report.placement["frames_to_driver"] is True
    assert all(r["decode"]["on"] == "worker" for r in report.chunks["runs"])
    assert (tmp_path / PREVIEW).stat().st_size > 0


def test_a_replica_that_cannot_read_the_input_gets_frames_from_the_driver(tmp_path, sequential, fresh_actors,
                                                                          monkeypatch):
    """The actor sees another file at the path (its size differs from the driver's): frames
    are decoded on the driver and shipped, and the report says so."""
    own = JobRun.worker_decode

    def elsewhere(self):
        request, why = own(self)
        return replace(request, size=request.size + 1), why

    monkeypatch.setattr(JobRun, "worker_decode", elsewhere)
    report = run_job(spec(CHUNKING, replicas={"depth": 2}), tmp_path, plans=affine_plans())
    assert rel_err(layers(tmp_path)["depth"], layers(sequential)["depth"]) < 1e-3
    runs = report.chunks["runs"]
    assert runs and all(r["decode"]["on"] == "driver" and "not the same file" in r["decode"]["reason"]
                        for r in runs)
    warned = [w for w in report.warnings if "cannot read the input" in w]
    assert warned and all("shipped" in w for w in warned)


def test_scene_cut_jobs_decode_on_the_driver_and_say_why(tmp_path, fresh_actors):
    s = spec(CHUNKING, replicas={"depth": 2}).model_copy(update={"scene_cuts": True})
    report = run_job(s, tmp_path, plans=affine_plans())
    assert report.status == "succeeded"
    assert all(r["decode"] == {"on": "driver", "reason": "scene-cut detection runs on frames decoded by the driver"}
               for r in report.chunks["runs"])


def test_decode_device_follows_the_actor_and_falls_back_to_cpu():
    import torch

    from vdp.engine.worker_decode import decode_device

    assert decode_device(torch.device("cpu")) == "cpu"
    assert decode_device(torch.device("cuda")) == ("cuda" if torch.cuda.is_available() else "cpu")
