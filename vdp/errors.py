"""Named exception types of vdp's public API.

Every error a user can cause is one of these, with a message that names the problem.
"""
from __future__ import annotations


class VdpError(Exception):
    """Base class of every error vdp raises on purpose."""


class DecodeError(VdpError):
    """The input cannot be decoded (missing, empty, not a video, truncated, corrupted)."""


class EncodeError(VdpError):
    """An output could not be encoded or written."""


class SpecError(VdpError):
    """A job spec or preset is invalid; the message names the field and the allowed values."""


class CatalogError(SpecError):
    """A stage or output kind is not in the catalog, or is registered twice."""


class WeightsError(VdpError):
    """A model checkpoint is missing, corrupted or does not match the model."""


class StageError(VdpError):
    """A stage failed while processing; carries the stage name and frame range."""

    def __init__(self, message: str, *, stage: str = "", first_frame: int | None = None,
                 last_frame: int | None = None) -> None:
        super().__init__(message)
        self.stage = stage
        self.first_frame = first_frame
        self.last_frame = last_frame

    def __reduce__(self):  # keyword-only fields survive pickling across Ray processes
        return (_rebuild_stage_error, (str(self), self.stage, self.first_frame, self.last_frame))


def _rebuild_stage_error(message: str, stage: str, first: int | None, last: int | None) -> StageError:
    return StageError(message, stage=stage, first_frame=first, last_frame=last)


class ResourceError(VdpError):
    """The cluster lacks the resources a job needs; the message lists every shortfall."""


class JobCancelledError(VdpError):
    """The job was cancelled while it ran."""


class JobTimeoutError(VdpError):
    """A long-running step exceeded its timeout."""


class InputError(VdpError):
    """The input video cannot be processed as asked (size, shape, or the memory it would need);
    raised before any stage starts, naming the source's dimensions."""
