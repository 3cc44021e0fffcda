"""Store records to the wire models of `vdp.api`."""
from __future__ import annotations

from datetime import datetime, timezone

from vdp.api import JobStatus, JobSummary, StageProgress
from vdp.service.store import JobRecord
from vdp.spec import JobSpec


def _time(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)


def job_status(record: JobRecord) -> JobStatus:
    """Full status of a job."""
    return JobStatus(
        id=record.id, state=record.state, input=record.input,
        created_at=_time(record.created_at), started_at=_time(record.started_at),
        finished_at=_time(record.finished_at), updated_at=_time(record.updated_at),
        error=record.error, cancel_requested=record.cancel_requested, attempts=record.attempts,
        version=record.version, progress=[StageProgress(**p) for p in record.progress],
        outputs=record.outputs, spec=JobSpec.model_validate_json(record.spec),
    )


def job_summary(record: JobRecord) -> JobSummary:
    """One row of the job list."""
    return JobSummary(id=record.id, state=record.state, input=record.input,
                      created_at=_time(record.created_at), started_at=_time(record.started_at),
                      finished_at=_time(record.finished_at), error=record.error)
