"""Typed exceptions of the vdp SDK: one class per kind of gateway answer.

Every class derives from `vdp.errors.VdpError`, so the CLI's error handling covers them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from vdp.errors import JobCancelledError, JobTimeoutError, VdpError

if TYPE_CHECKING:
    from vdp.api import JobStatus

__all__ = [
    "ApiError", "AuthenticationError", "ConflictError", "DownloadVerificationError",
    "GatewayUnavailableError", "UnsafeOutputNameError",
    "InvalidRequestError", "JobCancelledError", "JobFailedError", "JobTimeoutError",
    "NotFoundError", "PayloadTooLargeError", "PermissionDeniedError", "ServerError",
    "UnsupportedMediaError", "error_for_status", "error_from_response",
]


class ApiError(VdpError):
    """The gateway answered with an error status.

    Attributes:
        status: HTTP status code.
        code: The gateway's short reason (``not_found``, ``invalid_spec`` ...).
        detail: The gateway's message.
    """

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{detail} (HTTP {status}, {code})")
        self.status = status
        self.code = code
        self.detail = detail


class InvalidRequestError(ApiError):
    """400 or 422: the request (JSON, spec, path, parameter) is invalid."""


class AuthenticationError(ApiError):
    """401: the bearer token is missing or wrong."""


class PermissionDeniedError(ApiError):
    """403: the request names something the gateway may not touch (e.g. a path outside its input roots)."""


class NotFoundError(ApiError):
    """404: no such job, upload or output."""


class ConflictError(ApiError):
    """409: the job's state does not allow this (e.g. cancelling a finished job)."""


class PayloadTooLargeError(ApiError):
    """413: the upload exceeds the gateway's size limit."""


class UnsupportedMediaError(ApiError):
    """415: the upload is not a decodable video."""


class ServerError(ApiError):
    """5xx: the gateway failed (507: its disk is full)."""


class UnsafeOutputNameError(VdpError):
    """The gateway named an output that would land outside the download folder (``../x``, ``/x``)."""


class DownloadVerificationError(VdpError):
    """A downloaded file does not match the digest the gateway sent (also after a fresh retry)."""


class GatewayUnavailableError(VdpError):
    """The gateway could not be reached (connection refused, timed out, dropped)."""


class JobFailedError(VdpError):
    """A job ended in state ``failed``.

    Attributes:
        status: The job's final status.
    """

    def __init__(self, status: "JobStatus") -> None:
        super().__init__(f"job {status.id} failed: {status.error or 'no error text'}")
        self.status = status


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequestError, 401: AuthenticationError, 403: PermissionDeniedError,
    404: NotFoundError, 409: ConflictError, 413: PayloadTooLargeError,
    408: InvalidRequestError, 415: UnsupportedMediaError, 422: InvalidRequestError,
}


def error_for_status(status: int, code: str, detail: str) -> ApiError:
    """The exception for an error response."""
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    return cls(status, code, detail)


def error_from_response(response) -> ApiError:
    """The exception for an error response (an ``httpx.Response``) with the gateway's error body,
    or its text when the body is not one."""
    try:
        body = response.json()
        detail, code = str(body["detail"]), str(body.get("code", "error"))
    except (ValueError, KeyError, TypeError):
        detail, code = response.text[:500] or response.reason_phrase, "error"
    return error_for_status(response.status_code, code, detail)
