"""The job manager: a queue in the store, worker threads that run jobs, cancel events.

`max_concurrent_jobs` worker threads each claim the oldest queued job, run it through the
engine (Ray actors, reused across jobs because they are named) and record the outcome. A
cancel sets the job's event; the engine checks it before every batch, so a job stops within
about one batch time and its actors are free for the next job.

Restarts: a job left ``running`` by a stopped or crashed gateway is queued again at startup
(`JobStore.recover`) and its next run gets ``resume=True`` (``attempts > 1``): the engine
continues from the ledger in the job's directory instead of starting from zero. Job folders
without a row (the store was lost or replaced) are adopted as finished jobs (`reconcile`).

Job errors are stored as the client sees them (`vdp.service.public`); the full text is logged.
"""
from __future__ import annotations

import errno
import json
import logging
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Protocol

from vdp.api import TERMINAL_STATES, UPLOAD_PREFIX
from vdp.engine.progress import StageProgress
from vdp.errors import JobCancelledError, SpecError, VdpError
from vdp.service.errors import NotFound, ServiceError, conflict, not_found
from vdp.service.paths import JOB_ID, UPLOAD_ID, resolve_input, resolve_upload
from vdp.service.public import public_text
from vdp.service.settings import Settings
from vdp.service.store import JobRecord, JobStore
from vdp.spec import JobSpec

log = logging.getLogger("vdp.service")


class JobRunner(Protocol):
    """Runs one job into `out_dir` and returns its output names (raises on failure)."""

    def __call__(self, spec: JobSpec, out_dir: Path, *,
                 progress: Callable[[list[StageProgress]], None],
                 cancel: threading.Event, resume: bool) -> list[str]: ...


def run_with_engine(spec: JobSpec, out_dir: Path, *, progress: Callable[[list[StageProgress]], None],
                    cancel: threading.Event, resume: bool) -> list[str]:
    """The default `JobRunner`: `vdp.engine.job.run_job` on Ray.

    With `resume`, the engine continues from the ledger in `out_dir`; if it refuses because
    the directory holds a different job (the input now resolves elsewhere), the job runs afresh.
    """
    from vdp.engine.job import run_job

    if not resume:
        return list(run_job(spec, out_dir, progress=progress, cancel=cancel).outputs)
    try:
        report = run_job(spec, out_dir, progress=progress, cancel=cancel, resume=True)
    except SpecError as exc:
        log.warning("cannot resume in %s (%s); running the job from the start", out_dir.name, exc)
        report = run_job(spec, out_dir, progress=progress, cancel=cancel)
    return list(report.outputs)


class JobManager:
    """Queue, workers and cancellation.

    Args:
        store: The job store.
        settings: Gateway settings (data dir, input roots, concurrency).
        runner: What runs a job (default: the engine on Ray).
        on_finish: Called with ``(state, seconds)`` after every job (metrics).
    """

    def __init__(self, store: JobStore, settings: Settings, *, runner: JobRunner = run_with_engine,
                 on_finish: Callable[[str, float], None] | None = None) -> None:
        self.store = store
        self.settings = settings
        self.runner = runner
        self.on_finish = on_finish
        self.ready = threading.Event()  # set when the cluster is reachable; workers wait for it
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._wakeup = threading.Condition()
        self._cancel_events: dict[str, threading.Event] = {}
        self._threads: list[threading.Thread] = []

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> tuple[list[str], list[str]]:
        """Recover jobs a previous gateway left running, then start the workers.

        Returns:
            Ids queued again, ids cancelled (their cancel was pending), by the recovery.
        """
        requeued, cancelled = self.store.recover()
        self.reconcile()
        self.expire_uploads(remove_strays=True)
        for i in range(self.settings.max_concurrent_jobs):
            t = threading.Thread(target=self._worker, name=f"vdp-job-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        return requeued, cancelled

    def stop(self, grace_s: float | None = None) -> None:
        """Stop the workers: running jobs stop at their next batch and go back to the queue."""
        self._stopping.set()
        with self._lock:
            for event in self._cancel_events.values():
                event.set()
        with self._wakeup:
            self._wakeup.notify_all()
        deadline = time.monotonic() + (self.settings.shutdown_grace_s if grace_s is None else grace_s)
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            log.warning("job workers still busy at shutdown: %s (their jobs resume at the next start)", alive)

    def reconcile(self) -> tuple[list[str], list[str]]:
        """Adopt job folders the store has no row for; report the ones that cannot be adopted.

        A folder with a valid ``spec.json`` becomes a finished job: ``succeeded`` when its
        ``report.json`` says so, else ``failed``. Its input shows as the input file's name.

        Returns:
            Ids adopted, names of folders left alone (logged as orphans).
        """
        known = self.store.job_ids()
        adopted, orphans = [], []
        jobs_dir = self.settings.jobs_dir
        for folder in sorted(jobs_dir.iterdir()) if jobs_dir.is_dir() else []:
            if folder.name in known or not folder.is_dir():
                continue
            if JOB_ID.match(folder.name) and self._adopt(folder):
                adopted.append(folder.name)
            else:
                orphans.append(folder.name)
        if adopted:
            log.warning("adopted %d job folder(s) the store had no record of: %s",
                        len(adopted), ", ".join(adopted))
        if orphans:
            log.warning("%d folder(s) in %s are not jobs this gateway can adopt (left untouched): %s",
                        len(orphans), jobs_dir, ", ".join(orphans))
        return adopted, orphans

    def _adopt(self, folder: Path) -> bool:
        try:
            spec = JobSpec.model_validate_json((folder / "spec.json").read_text())
        except (OSError, ValueError) as exc:
            log.warning("job folder %s has no usable spec.json (%s)", folder.name, type(exc).__name__)
            return False
        try:
            report = json.loads((folder / "report.json").read_text())
        except (OSError, ValueError):
            report = {}
        outputs = [o for o in report.get("outputs", []) if isinstance(o, str)]
        ok = report.get("status") == "succeeded" and all((folder / o).exists() for o in outputs)
        spec.input = Path(spec.input).name or "unknown"
        return self.store.adopt_job(
            folder.name, state="succeeded" if ok else "failed", input=spec.input,
            spec_json=spec.to_json(), created_at=folder.stat().st_mtime,
            error=None if ok else "found on disk without a record (the job store was replaced); "
                                  "its run had not finished",
            outputs=outputs if ok else [])

    def expire_uploads(self, *, remove_strays: bool = False) -> list[str]:
        """Delete uploads older than ``upload_ttl_s`` that no queued or running job reads.

        Args:
            remove_strays: Also remove upload folders without a row (an upload cut short by a
                crash); only safe before the gateway accepts requests.

        Returns:
            Ids removed.
        """
        removed = self.store.expired_uploads(time.time() - self.settings.upload_ttl_s)
        for upload_id in removed:
            self.store.delete_upload(upload_id)
            shutil.rmtree(self.settings.uploads_dir / upload_id, ignore_errors=True)
        if remove_strays and self.settings.uploads_dir.is_dir():
            known = self.store.upload_ids()
            for folder in self.settings.uploads_dir.iterdir():
                if folder.name not in known and (UPLOAD_ID.match(folder.name) or folder.is_dir()):
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append(folder.name)
        if removed:
            log.info("removed %d unused upload(s): %s", len(removed), ", ".join(removed))
        return removed

    # -- requests -----------------------------------------------------------------------------

    def resolve_input(self, raw: str) -> Path:
        """The file a job input names: an upload (``upload:<id>``) or a path under an input root.

        Raises:
            ServiceError: The input is malformed, forbidden or missing.
        """
        if raw.startswith(UPLOAD_PREFIX):
            return resolve_upload(raw[len(UPLOAD_PREFIX):], self.settings.uploads_dir)
        return resolve_input(raw, self.settings.input_roots)

    def submit(self, spec: JobSpec) -> JobRecord:
        """Queue a validated spec (its input is checked now and again when it starts).

        Raises:
            ServiceError: The input is malformed, forbidden or missing.
        """
        self.resolve_input(spec.input)
        record = self.store.create_job(uuid.uuid4().hex, spec.input, spec.to_json())
        with self._wakeup:
            self._wakeup.notify()
        return record

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a queued job at once, or ask a running one to stop.

        Raises:
            ServiceError: 404 for an unknown job; 409 when it already finished or a cancel is pending.
        """
        with self._lock:
            record = self.store.get_job(job_id)
            if record is None:
                raise not_found(f"no job with id {job_id!r}")
            if record.state in TERMINAL_STATES:
                raise conflict(f"job {job_id} already {record.state}; there is nothing to cancel")
            if record.cancel_requested:
                raise conflict(f"a cancel of job {job_id} was already requested; it is stopping")
            if not self.store.cancel_queued(job_id):
                if not self.store.request_cancel(job_id):
                    raise conflict(f"job {job_id} changed state meanwhile; try again")
                event = self._cancel_events.get(job_id)
                if event is not None:
                    event.set()
        return self.store.get_job(job_id)

    def delete(self, job_id: str) -> None:
        """Remove a finished job and its directory.

        Raises:
            ServiceError: 404 for an unknown job; 409 while it is queued or running.
        """
        record = self.store.get_job(job_id)
        if record is None:
            raise not_found(f"no job with id {job_id!r}")
        if record.state not in TERMINAL_STATES or not self.store.delete_job(job_id):
            raise conflict(f"job {job_id} is {record.state}; cancel it and wait for it to stop first")
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def job_dir(self, job_id: str) -> Path:
        """The job's output directory (``<data_dir>/jobs/<id>``)."""
        if not JOB_ID.match(job_id):
            raise NotFound(f"no job with id {job_id!r}")
        return self.settings.jobs_dir / job_id

    # -- workers ------------------------------------------------------------------------------

    def _worker(self) -> None:
        while not self._stopping.is_set():
            if not self.ready.wait(timeout=0.5):
                continue
            with self._lock:
                record = None if self._stopping.is_set() else self.store.claim_next()
                event = threading.Event()
                if record is not None:
                    self._cancel_events[record.id] = event
            if record is None:
                with self._wakeup:
                    self._wakeup.wait(timeout=1.0)
                continue
            try:
                self._run(record, event)
            finally:
                with self._lock:
                    self._cancel_events.pop(record.id, None)

    def _run(self, record: JobRecord, cancel: threading.Event) -> None:
        t0 = time.monotonic()
        job_id = record.id
        last: list[dict] = []

        def progress(stages: list[StageProgress]) -> None:
            nonlocal last
            last = [p.to_dict() for p in stages]
            self.store.update_progress(job_id, last)

        outputs: list[str] = []
        out_dir = self.job_dir(job_id)
        input_path: str | None = None
        try:
            spec = JobSpec.model_validate_json(record.spec)
            spec.input = input_path = str(self.resolve_input(record.input))
            out_dir.mkdir(parents=True, exist_ok=True)
            log.info("job %s: started (attempt %d)", job_id, record.attempts)
            outputs = self.runner(spec, out_dir, progress=progress, cancel=cancel,
                                  resume=record.attempts > 1)
            state, error = "succeeded", None
        except JobCancelledError:
            current = self.store.get_job(job_id)
            if self._stopping.is_set() and not (current and current.cancel_requested):
                self.store.requeue(job_id, "interrupted by a gateway shutdown; queued again")
                log.info("job %s: interrupted by shutdown, queued again", job_id)
                return
            state, error = "cancelled", "cancelled while running"
        except ServiceError as exc:
            state, error = "failed", f"input no longer usable: {exc.detail}"
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                log.exception("job %s: unexpected error", job_id)
            state, error = "failed", (f"the gateway's disk is full ({type(exc).__name__})"
                                      if exc.errno in (errno.ENOSPC, errno.EDQUOT)
                                      else f"internal error ({type(exc).__name__}); see the gateway log")
        except VdpError as exc:
            state, error = "failed", f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a bug, not a user error: keep the traceback in the log only
            log.exception("job %s: unexpected error", job_id)
            state, error = "failed", f"internal error ({type(exc).__name__}); see the gateway log"
        seconds = time.monotonic() - t0
        log.info("job %s: %s in %.1f s%s", job_id, state, seconds, f" ({error})" if error else "")
        if error:
            error = public_text(error, job_dir=out_dir, input_path=input_path, input_label=record.input)
        self.store.finish(job_id, state, error=error, outputs=outputs, progress=last or None)
        if self.on_finish:
            self.on_finish(state, seconds)
