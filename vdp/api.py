"""Wire types of the vdp gateway's REST API: a neutral module the gateway (`vdp.service`) and
the SDK (`vdp.client`) both import, so neither depends on the other.

The gateway declares these as its response models, so the OpenAPI schema, the server and the
client agree by construction. Importing this module needs pydantic only (no torch, no Ray).
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vdp.spec import JobSpec

__all__ = [
    "ErrorBody", "Health", "JobList", "JobState", "JobStatus", "JobSummary", "OutputFile",
    "OutputList", "Readiness", "StageProgress", "TERMINAL_STATES", "UPLOAD_PREFIX", "UploadInfo",
    "VideoSummary",
]

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
#: States a job never leaves.
TERMINAL_STATES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
#: Prefix that marks a job input as an upload id (``upload:<id>``) rather than a path.
UPLOAD_PREFIX = "upload:"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class StageProgress(_Model):
    """Progress of one stage of a running job."""

    stage: str = Field(..., description="decode, depth, refine, matte or write.")
    frames_done: int = Field(..., ge=0)
    frames_total: int | None = Field(None, description="Frames expected (null when unknown).")
    busy_seconds: float = Field(0.0, description="Time spent inside the stage's own calls.")
    elapsed_seconds: float = Field(0.0, description="Wall time since the job started running.")
    fps: float = Field(0.0, description="Frames per wall-clock second so far.")
    busy_fps: float = Field(0.0, description="Frames per second of the stage's own busy time (its own speed).")
    eta_seconds: float | None = Field(None, description="Estimated seconds to completion.")


class JobStatus(_Model):
    """Everything the gateway knows about one job."""

    id: str
    state: JobState
    input: str = Field(..., description="The input as submitted (a path under an input root, or upload:<id>).")
    created_at: datetime
    started_at: datetime | None = Field(None, description="When the current (last) run started.")
    finished_at: datetime | None = None
    updated_at: datetime
    error: str | None = Field(None, description="Why the job failed (no stack traces).")
    cancel_requested: bool = Field(False, description="A cancel was asked for and the job is stopping.")
    attempts: int = Field(0, description="How many times the job started running (restarts count).")
    version: int = Field(0, description="Increases on every change of state or progress.")
    progress: list[StageProgress] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list, description="Output names, once the job succeeded.")
    spec: JobSpec

    @property
    def done(self) -> bool:
        """Whether the job reached a final state."""
        return self.state in TERMINAL_STATES


class JobSummary(_Model):
    """One row of the job list."""

    id: str
    state: JobState
    input: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None


class JobList(_Model):
    """A page of jobs, newest first."""

    jobs: list[JobSummary]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page; null on the last page.")


class VideoSummary(_Model):
    """What the gateway saw when it probed an uploaded video."""

    num_frames: int
    fps: float
    duration_seconds: float
    width: int
    height: int
    codec: str


class UploadInfo(_Model):
    """A stored upload; use `input` as a job's input."""

    id: str
    input: str = Field(..., description="Value for a JobSpec's `input` field: upload:<id>.")
    filename: str = Field(..., description="Sanitised file name.")
    size_bytes: int
    created_at: datetime
    video: VideoSummary


class OutputFile(_Model):
    """One entry of a job's output directory."""

    name: str = Field(..., description="Name to download it by.")
    type: Literal["file", "directory"] = Field(..., description="Directories download as a ZIP archive.")
    size_bytes: int = Field(..., description="File size, or total size of a directory's files.")
    media_type: str


class OutputList(_Model):
    """A job's outputs (including spec.json and report.json)."""

    job_id: str
    state: JobState
    outputs: list[OutputFile]


class Health(_Model):
    status: Literal["ok"] = "ok"


class Readiness(_Model):
    """Whether the gateway can run jobs now."""

    ready: bool
    ray: bool = Field(..., description="Ray is connected.")
    presets: dict[str, bool] = Field(default_factory=dict, description="Per required preset: its weights are present.")
    problems: list[str] = Field(default_factory=list, description="What keeps the gateway from being ready.")


class ErrorBody(_Model):
    """Body of every error response."""

    detail: str = Field(..., description="What went wrong, in words.")
    code: str = Field(..., description="Short machine-readable reason, e.g. not_found, invalid_spec.")
