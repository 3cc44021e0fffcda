"""Python SDK of the vdp gateway (httpx + pydantic; imports without torch or Ray)."""
from vdp.client.client import Client, Job
from vdp.client.errors import (
    ApiError, AuthenticationError, ConflictError, DownloadVerificationError,
    GatewayUnavailableError, InvalidRequestError, UnsafeOutputNameError,
    JobCancelledError, JobFailedError, JobTimeoutError, NotFoundError, PayloadTooLargeError,
    PermissionDeniedError, ServerError, UnsupportedMediaError,
)
from vdp.api import (
    TERMINAL_STATES, JobList, JobState, JobStatus, JobSummary, OutputFile, Readiness,
    StageProgress, UploadInfo,
)

__all__ = [
    "ApiError", "AuthenticationError", "Client", "ConflictError", "DownloadVerificationError",
    "GatewayUnavailableError", "UnsafeOutputNameError",
    "InvalidRequestError", "Job", "JobCancelledError", "JobFailedError", "JobList", "JobState",
    "JobStatus", "JobSummary", "JobTimeoutError", "NotFoundError", "OutputFile",
    "PayloadTooLargeError", "PermissionDeniedError", "Readiness", "ServerError", "StageProgress",
    "TERMINAL_STATES", "UnsupportedMediaError", "UploadInfo",
]
