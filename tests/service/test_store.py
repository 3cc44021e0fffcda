"""JobStore: WAL, state transitions with timestamps, queue order, pagination, crash recovery."""
from __future__ import annotations

import threading
import time

import pytest

from vdp.service.errors import StoreError
from vdp.service.store import JobStore, StoreCorruptError


@pytest.fixture()
def store(tmp_path):
    s = JobStore(tmp_path / "vdp.db")
    yield s
    s.close()


def add(store: JobStore, n: int) -> list[str]:
    return [store.create_job(f"{i:032x}", f"clip{i}.mp4", "{}").id for i in range(n)]


def test_database_is_in_wal_mode(store):
    assert store.journal_mode() == "wal"


def test_lifecycle_timestamps_and_versions(store):
    (job_id,) = add(store, 1)
    queued = store.get_job(job_id)
    assert queued.state == "queued" and queued.started_at is None and queued.version == 0

    running = store.claim_next()
    assert running.id == job_id and running.state == "running" and running.attempts == 1
    assert running.started_at >= queued.created_at and running.version == 1
    assert store.update_progress(job_id, [{"stage": "depth", "frames_done": 3}])
    assert store.get_job(job_id).progress == [{"stage": "depth", "frames_done": 3}]

    assert store.finish(job_id, "failed", error="DecodeError: truncated")
    done = store.get_job(job_id)
    assert done.state == "failed" and done.error == "DecodeError: truncated"
    assert done.finished_at >= done.started_at and done.version == 3
    # A finished job never changes again.
    assert not store.finish(job_id, "succeeded")
    assert not store.update_progress(job_id, [])
    assert not store.request_cancel(job_id)
    assert not store.cancel_queued(job_id)


def test_finish_rejects_a_non_final_state(store):
    with pytest.raises(ValueError, match="final state must be"):
        store.finish("x", "running")


def test_claim_takes_the_oldest_queued_job_once(store):
    ids = add(store, 3)
    assert [store.claim_next().id for _ in range(3)] == ids
    assert store.claim_next() is None


def test_concurrent_claims_never_share_a_job(store):
    add(store, 40)
    claimed: list[str] = []
    lock = threading.Lock()

    def worker():
        while (job := store.claim_next()) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == 40 and len(set(claimed)) == 40


def test_cancel_queued_and_request_cancel_of_running(store):
    a, b = add(store, 2)
    assert store.cancel_queued(b)
    assert store.get_job(b).state == "cancelled" and store.get_job(b).finished_at is not None
    assert store.claim_next().id == a
    assert not store.cancel_queued(a)
    assert store.request_cancel(a)
    assert not store.request_cancel(a), "a second request changes nothing"
    assert store.get_job(a).cancel_requested


def test_pagination_newest_first_with_state_filter(store):
    ids = add(store, 7)
    for job_id in ids[::2]:
        store.cancel_queued(job_id)
    page, cursor = store.list_jobs(state="cancelled", limit=3)
    assert [j.id for j in page] == [ids[6], ids[4], ids[2]]
    page2, cursor2 = store.list_jobs(state="cancelled", limit=3, before_seq=cursor)
    assert [j.id for j in page2] == [ids[0]] and cursor2 is None
    assert store.count_by_state() == {"queued": 3, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 4}


def test_recover_after_a_crash(tmp_path):
    # A gateway dies with two jobs running (one of them being cancelled) and one queued.
    store = JobStore(tmp_path / "vdp.db")
    a, b, c = add(store, 3)
    store.claim_next()
    store.claim_next()
    store.request_cancel(b)
    store._db.close()  # no clean shutdown

    reopened = JobStore(tmp_path / "vdp.db")
    requeued, cancelled = reopened.recover()
    assert requeued == [a] and cancelled == [b]
    assert reopened.get_job(a).state == "queued" and "restart" in reopened.get_job(a).error
    assert reopened.get_job(b).state == "cancelled"
    assert reopened.claim_next().id == a and reopened.get_job(a).attempts == 2
    assert reopened.claim_next().id == c
    reopened.close()


def test_delete_only_finished_jobs(store):
    a, b = add(store, 2)
    assert not store.delete_job(a)
    store.cancel_queued(a)
    assert store.delete_job(a) and store.get_job(a) is None
    assert store.active_jobs_with_input("clip1.mp4") == [b]


def test_newer_schema_is_refused(tmp_path):
    JobStore(tmp_path / "vdp.db").close()
    import sqlite3

    with sqlite3.connect(tmp_path / "vdp.db") as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(StoreError, match="schema version 99"):
        JobStore(tmp_path / "vdp.db")


def test_uploads_roundtrip(store):
    store.add_upload("ab" * 16, "clip.mp4", 123, {"num_frames": 3})
    rec = store.get_upload("ab" * 16)
    assert rec.filename == "clip.mp4" and rec.video == {"num_frames": 3}
    assert store.delete_upload("ab" * 16) and store.get_upload("ab" * 16) is None


@pytest.mark.parametrize("offset,message", [(0, "not an SQLite database"), (4096, "is damaged")])
def test_zeroed_pages_are_detected_at_open(tmp_path, offset, message):
    store = JobStore(tmp_path / "vdp.db")
    for i in range(40):
        store.create_job(f"{i:032x}", "clip.mp4", '{"input": "clip.mp4"}')
    store.close()
    with (tmp_path / "vdp.db").open("r+b") as f:
        f.seek(offset)
        f.write(b"\0" * 4096)
    with pytest.raises(StoreCorruptError, match=message):
        JobStore(tmp_path / "vdp.db")


def test_expired_uploads_skip_those_an_active_job_reads(store):
    store.add_upload("a" * 32, "a.mp4", 1, {})
    store.add_upload("b" * 32, "b.mp4", 1, {})
    store.create_job("c" * 32, "upload:" + "b" * 32, "{}")
    assert store.expired_uploads(time.time() + 1) == ["a" * 32]
