"""JobManager with a stand-in runner (no Ray): concurrency, cancel, shutdown, resume flag, errors."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from vdp.engine.progress import StageProgress
from vdp.errors import DecodeError, JobCancelledError
from vdp.service.errors import ServiceError
from vdp.service.manager import JobManager
from vdp.service.settings import Settings
from vdp.service.store import JobStore
from vdp.spec import JobSpec


class FakeRunner:
    """Runs until released or cancelled; reports a little progress; records its calls."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.release = threading.Event()
        self.started: list[str] = []
        self.resume_flags: list[bool] = []
        self.active = 0
        self.peak = 0
        self.fail = fail
        self._lock = threading.Lock()

    def __call__(self, spec: JobSpec, out_dir: Path, *, progress, cancel, resume) -> list[str]:
        with self._lock:
            self.started.append(out_dir.name)
            self.resume_flags.append(resume)
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            progress([StageProgress("decode", 1, 2)])
            while not self.release.wait(0.01):
                if cancel.is_set():
                    raise JobCancelledError("job cancelled")
            if self.fail is not None:
                raise self.fail
            (out_dir / "out.txt").write_text(spec.input)
            return ["out.txt"]
        finally:
            with self._lock:
                self.active -= 1


@pytest.fixture()
def setup(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    (root / "clip.mp4").write_bytes(b"x")

    def make(runner, **kw):
        settings = Settings(data_dir=tmp_path / "data", input_roots=[root], **kw)
        store = JobStore(settings.db_path)
        manager = JobManager(store, settings, runner=runner)
        manager.start()
        manager.ready.set()
        return manager, store

    return make


def spec() -> JobSpec:
    return JobSpec.parse({"input": "clip.mp4"})


def wait_for(predicate, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def test_concurrency_limit(setup):
    runner = FakeRunner()
    manager, store = setup(runner, max_concurrent_jobs=2)
    ids = [manager.submit(spec()).id for _ in range(5)]
    wait_for(lambda: len(runner.started) == 2)
    time.sleep(0.2)
    assert runner.peak == 2 and [store.get_job(i).state for i in ids[2:]] == ["queued"] * 3
    runner.release.set()
    wait_for(lambda: all(store.get_job(i).state == "succeeded" for i in ids))
    assert set(runner.started[:2]) == set(ids[:2]) and sorted(runner.started) == sorted(ids)
    assert store.get_job(ids[0]).outputs == ["out.txt"]
    assert store.get_job(ids[0]).progress == [StageProgress("decode", 1, 2).to_dict()]
    manager.stop()


def test_cancel_running_and_queued(setup):
    runner = FakeRunner()
    manager, store = setup(runner)
    a, b = manager.submit(spec()).id, manager.submit(spec()).id
    wait_for(lambda: store.get_job(a).state == "running")
    assert manager.cancel(b).state == "cancelled"
    assert manager.cancel(a).cancel_requested
    wait_for(lambda: store.get_job(a).state == "cancelled")
    assert store.get_job(a).error == "cancelled while running"
    with pytest.raises(ServiceError, match="already cancelled"):
        manager.cancel(a)
    with pytest.raises(ServiceError, match="no job with id"):
        manager.cancel("f" * 32)
    manager.stop()


def test_shutdown_requeues_the_running_job_and_restart_resumes_it(setup, tmp_path):
    runner = FakeRunner()
    manager, store = setup(runner)
    a = manager.submit(spec()).id
    wait_for(lambda: store.get_job(a).state == "running")
    manager.stop(grace_s=5)
    assert store.get_job(a).state == "queued"
    store.close()

    runner2 = FakeRunner()
    runner2.release.set()
    manager2, store2 = setup(runner2)
    wait_for(lambda: store2.get_job(a).state == "succeeded")
    assert runner2.resume_flags == [True] and store2.get_job(a).attempts == 2
    manager2.stop()


def test_failures_are_recorded_without_tracebacks(setup):
    runner = FakeRunner(fail=DecodeError("frame 12 is corrupt"))
    runner.release.set()
    manager, store = setup(runner)
    a = manager.submit(spec()).id
    wait_for(lambda: store.get_job(a).state == "failed")
    assert store.get_job(a).error == "DecodeError: frame 12 is corrupt"
    runner.fail = ZeroDivisionError("secret internals")
    b = manager.submit(spec()).id
    wait_for(lambda: store.get_job(b).state == "failed")
    assert store.get_job(b).error == "internal error (ZeroDivisionError); see the gateway log"
    manager.stop()


def test_input_removed_before_start_fails_the_job(setup, tmp_path):
    runner = FakeRunner()
    manager, store = setup(runner, max_concurrent_jobs=0)  # accepts jobs, runs none
    a = manager.submit(spec()).id
    (tmp_path / "in" / "clip.mp4").unlink()
    manager.stop()
    runner.release.set()
    manager2, store2 = setup(runner)
    wait_for(lambda: store2.get_job(a).state == "failed")
    assert "input no longer usable" in store2.get_job(a).error
    manager2.stop()


def test_delete_only_finished_jobs_and_their_directory(setup):
    runner = FakeRunner()
    manager, store = setup(runner)
    a = manager.submit(spec()).id
    wait_for(lambda: store.get_job(a).state == "running")
    with pytest.raises(ServiceError, match="cancel it"):
        manager.delete(a)
    runner.release.set()
    wait_for(lambda: store.get_job(a).state == "succeeded")
    assert manager.job_dir(a).is_dir()
    manager.delete(a)
    assert not manager.job_dir(a).exists() and store.get_job(a) is None
    manager.stop()
