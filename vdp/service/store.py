"""The job store: one SQLite file in WAL mode, the gateway's only durable state.

A job moves ``queued → running → succeeded | failed | cancelled``; every transition is one
conditional UPDATE (``... WHERE state = 'running'``), so two threads can never both move a
job, and each change bumps the job's ``version`` (what the event stream watches).

Opening checks the file (an SQLite header, then ``PRAGMA quick_check``) and refuses a damaged
one with `StoreCorruptError`; a write that finds the disk full raises `StorageFull` and leaves
nothing behind (each write is one statement, so SQLite rolls it back whole).
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vdp.service.errors import StorageFull, StoreError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    state            TEXT NOT NULL,
    input            TEXT NOT NULL,
    spec             TEXT NOT NULL,
    created_at       REAL NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    updated_at       REAL NOT NULL,
    error            TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    version          INTEGER NOT NULL DEFAULT 0,
    progress         TEXT NOT NULL DEFAULT '[]',
    outputs          TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, seq);
CREATE TABLE IF NOT EXISTS uploads (
    id          TEXT PRIMARY KEY,
    filename    TEXT NOT NULL,
    size_bytes  INTEGER NOT NULL,
    created_at  REAL NOT NULL,
    video       TEXT NOT NULL
);
"""

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
_SQLITE_HEADER = b"SQLite format 3\x00"
_SQLITE_FULL = 13


class StoreCorruptError(StoreError):
    """The job store's file is damaged or is not a vdp store; the gateway will not start on it."""


class _Connection(sqlite3.Connection):
    """A connection whose "disk full" failures are `StorageFull` (HTTP 507), not a 500."""

    def execute(self, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
        try:
            return super().execute(*args)
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF == _SQLITE_FULL:
                raise StorageFull("the gateway's disk is full: nothing was stored; free space on "
                                  "its data volume and try again") from exc
            raise


def check_store_file(path: Path) -> None:
    """Refuse a store file that is not an SQLite database (an empty or missing file is fine).

    Raises:
        StoreCorruptError: Its header is not SQLite's (zeroed, truncated, another file type).
    """
    try:
        with path.open("rb") as f:
            head = f.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        return
    if head and head != _SQLITE_HEADER:
        raise StoreCorruptError(
            f"the job store {path} is not an SQLite database (its first bytes are "
            f"{head[:8]!r}): it is damaged or was replaced. The gateway will not start on it: "
            "restore it from a backup, or move it away to start with an empty store (the job "
            "folders are then adopted)")


@dataclass
class JobRecord:
    """One row of ``jobs`` (timestamps in Unix seconds, JSON columns decoded)."""

    seq: int
    id: str
    state: str
    input: str
    spec: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    updated_at: float
    error: str | None
    cancel_requested: bool
    attempts: int
    version: int
    progress: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "JobRecord":
        d = dict(row)
        d["cancel_requested"] = bool(d["cancel_requested"])
        d["progress"] = json.loads(d["progress"])
        d["outputs"] = json.loads(d["outputs"])
        return cls(**d)


@dataclass
class UploadRecord:
    """One row of ``uploads``."""

    id: str
    filename: str
    size_bytes: int
    created_at: float
    video: dict[str, Any]


class JobStore:
    """Thread-safe access to the SQLite job store.

    Args:
        path: Database file (created with its parent directory).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        check_store_file(self.path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                   factory=_Connection)
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreCorruptError(
                f"the job store {self.path} is damaged ({exc}). The gateway will not start on "
                "it: restore it from a backup, or move it away to start with an empty store "
                "(the job folders are then adopted)") from None
        except BaseException:
            self._db.close()
            raise

    def _open(self) -> None:
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA busy_timeout=10000")
        problems = [r[0] for r in self._db.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise sqlite3.DatabaseError("; ".join(problems[:3]))
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._lock:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path} has schema version {version}; this vdp knows up to "
                                 f"{SCHEMA_VERSION} (upgrade vdp)")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def journal_mode(self) -> str:
        return self._db.execute("PRAGMA journal_mode").fetchone()[0]

    # -- jobs ---------------------------------------------------------------------------------

    def create_job(self, job_id: str, input: str, spec_json: str) -> JobRecord:
        """Insert a queued job."""
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs (id, state, input, spec, created_at, updated_at) "
                "VALUES (?, 'queued', ?, ?, ?, ?)", (job_id, input, spec_json, now, now))
            return self._get(job_id)

    def get_job(self, job_id: str) -> JobRecord | None:
        with self._lock:
            return self._get(job_id)

    def job_version(self, job_id: str) -> tuple[int, str] | None:
        """``(version, state)`` of a job, cheaply (what the event stream polls)."""
        with self._lock:
            row = self._db.execute("SELECT version, state FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else (row[0], row[1])

    def list_jobs(self, *, state: str | None = None, limit: int = 50,
                  before_seq: int | None = None) -> tuple[list[JobRecord], int | None]:
        """A page of jobs, newest first.

        Returns:
            The jobs and the cursor (a ``seq``) of the next page, or None on the last page.
        """
        where, args = [], []
        if state is not None:
            where.append("state = ?")
            args.append(state)
        if before_seq is not None:
            where.append("seq < ?")
            args.append(before_seq)
        sql = "SELECT * FROM jobs" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY seq DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, limit + 1)).fetchall()
        jobs = [JobRecord.from_row(r) for r in rows[:limit]]
        return jobs, (jobs[-1].seq if len(rows) > limit else None)

    def active_jobs_with_input(self, input: str) -> list[str]:
        """Ids of queued or running jobs that read `input`."""
        with self._lock:
            rows = self._db.execute("SELECT id FROM jobs WHERE input = ? AND state IN ('queued', 'running')",
                                    (input,)).fetchall()
        return [r[0] for r in rows]

    def count_by_state(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        counts = dict.fromkeys(STATES, 0)
        counts.update({r[0]: r[1] for r in rows})
        return counts

    def claim_next(self) -> JobRecord | None:
        """Move the oldest queued job to ``running`` and return it (None when none is queued)."""
        now = time.time()
        with self._lock:
            row = self._db.execute(
                "UPDATE jobs SET state = 'running', started_at = ?, updated_at = ?, "
                "attempts = attempts + 1, version = version + 1, progress = '[]', error = NULL "
                "WHERE seq = (SELECT seq FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1) "
                "RETURNING id", (now, now)).fetchall()
            return self._get(row[0][0]) if row else None

    def update_progress(self, job_id: str, progress: list[dict[str, Any]]) -> bool:
        """Record a running job's per-stage progress; False when the job is not running."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE jobs SET progress = ?, updated_at = ?, version = version + 1 "
                "WHERE id = ? AND state = 'running'", (json.dumps(progress), time.time(), job_id))
        return cur.rowcount == 1

    def finish(self, job_id: str, state: str, *, error: str | None = None,
               outputs: list[str] | None = None,
               progress: list[dict[str, Any]] | None = None) -> bool:
        """Move a running job to a final state; False when it was not running."""
        if state not in ("succeeded", "failed", "cancelled"):
            raise ValueError(f"final state must be succeeded, failed or cancelled, got {state!r}")
        now = time.time()
        sets = "state = ?, error = ?, finished_at = ?, updated_at = ?, version = version + 1, outputs = ?"
        args: list[Any] = [state, error, now, now, json.dumps(outputs or [])]
        if progress is not None:
            sets += ", progress = ?"
            args.append(json.dumps(progress))
        with self._lock:
            cur = self._db.execute(f"UPDATE jobs SET {sets} WHERE id = ? AND state = 'running'",
                                   (*args, job_id))
        return cur.rowcount == 1

    def cancel_queued(self, job_id: str) -> bool:
        """Cancel a job that has not started; False when it is not queued."""
        now = time.time()
        with self._lock:
            cur = self._db.execute(
                "UPDATE jobs SET state = 'cancelled', cancel_requested = 1, finished_at = ?, "
                "updated_at = ?, error = 'cancelled before it started', version = version + 1 "
                "WHERE id = ? AND state = 'queued'", (now, now, job_id))
        return cur.rowcount == 1

    def request_cancel(self, job_id: str) -> bool:
        """Flag a running job for cancellation; False when not running or already flagged."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE jobs SET cancel_requested = 1, updated_at = ?, version = version + 1 "
                "WHERE id = ? AND state = 'running' AND cancel_requested = 0", (time.time(), job_id))
        return cur.rowcount == 1

    def requeue(self, job_id: str, reason: str) -> bool:
        """Put a running job back in the queue (its run was interrupted, e.g. by a shutdown)."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE jobs SET state = 'queued', error = ?, updated_at = ?, version = version + 1 "
                "WHERE id = ? AND state = 'running'", (reason, time.time(), job_id))
        return cur.rowcount == 1

    def recover(self) -> tuple[list[str], list[str]]:
        """After a restart: requeue jobs left ``running``; cancel those whose cancel was pending.

        Returns:
            Ids requeued, ids cancelled.
        """
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cancelled = [r[0] for r in self._db.execute(
                    "UPDATE jobs SET state = 'cancelled', finished_at = ?, updated_at = ?, "
                    "error = 'cancelled (the gateway restarted while stopping it)', version = version + 1 "
                    "WHERE state = 'running' AND cancel_requested = 1 RETURNING id", (now, now))]
                requeued = [r[0] for r in self._db.execute(
                    "UPDATE jobs SET state = 'queued', updated_at = ?, version = version + 1, "
                    "error = 'interrupted by a gateway restart; queued again' "
                    "WHERE state = 'running' RETURNING id", (now,))]
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return requeued, cancelled

    def adopt_job(self, job_id: str, *, state: str, input: str, spec_json: str, created_at: float,
                  error: str | None, outputs: list[str]) -> bool:
        """Record a finished job found on disk without a row (the store was replaced or lost).

        Returns:
            False when a job with this id already exists.
        """
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO jobs (id, state, input, spec, created_at, finished_at, updated_at, "
                "error, attempts, outputs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
                (job_id, state, input, spec_json, created_at, created_at, time.time(), error,
                 json.dumps(outputs)))
        return cur.rowcount == 1

    def job_ids(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT id FROM jobs").fetchall()}

    def delete_job(self, job_id: str) -> bool:
        """Delete a finished job's row; False when it does not exist or is not finished."""
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM jobs WHERE id = ? AND state IN ('succeeded', 'failed', 'cancelled')",
                (job_id,))
        return cur.rowcount == 1

    def _get(self, job_id: str) -> JobRecord | None:
        row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else JobRecord.from_row(row)

    # -- uploads ------------------------------------------------------------------------------

    def add_upload(self, upload_id: str, filename: str, size_bytes: int, video: dict[str, Any]) -> UploadRecord:
        now = time.time()
        with self._lock:
            self._db.execute("INSERT INTO uploads (id, filename, size_bytes, created_at, video) "
                             "VALUES (?, ?, ?, ?, ?)",
                             (upload_id, filename, size_bytes, now, json.dumps(video)))
        return UploadRecord(upload_id, filename, size_bytes, now, video)

    def get_upload(self, upload_id: str) -> UploadRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM uploads WHERE id = ?", (upload_id,)).fetchone()
        if row is None:
            return None
        d = dict(row)
        d["video"] = json.loads(d["video"])
        return UploadRecord(**d)

    def upload_ids(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT id FROM uploads").fetchall()}

    def expired_uploads(self, older_than: float) -> list[str]:
        """Ids of uploads created before `older_than` that no queued or running job reads."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM uploads WHERE created_at < ? AND NOT EXISTS (SELECT 1 FROM jobs "
                "WHERE jobs.input = 'upload:' || uploads.id AND jobs.state IN ('queued', 'running'))",
                (older_than,)).fetchall()
        return [r[0] for r in rows]

    def delete_upload(self, upload_id: str) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))
        return cur.rowcount == 1
