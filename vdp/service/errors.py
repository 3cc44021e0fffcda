"""The gateway's domain errors, and the one table that maps them to HTTP.

The store, the manager, the path checks and the routers raise these (a named class per kind of
problem, a short machine-readable ``code`` and a message); only the app's error handler turns
them into responses, through `http_status`.
"""
from __future__ import annotations

from vdp.errors import VdpError


class ServiceError(VdpError):
    """A problem the gateway reports to its client as ``{"detail": ..., "code": ...}``.

    Args:
        detail: What went wrong, in words (no server paths, no traceback).
        code: Short machine-readable reason; default: the class's.
        headers: Extra response headers (e.g. ``WWW-Authenticate``).
    """

    code = "error"

    def __init__(self, detail: str, *, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.headers = headers or {}

    @classmethod
    def with_code(cls, code: str, detail: str, *, headers: dict[str, str] | None = None) -> "ServiceError":
        """This error with a more specific `code` (``bad_path``, ``input_not_found`` ...)."""
        return cls(detail, code=code, headers=headers)


class MalformedRequest(ServiceError):
    """The request itself is malformed (bad JSON, a bad path or name)."""

    code = "bad_request"


class Unauthenticated(ServiceError):
    """The bearer token is missing or wrong."""

    code = "missing_token"


class Forbidden(ServiceError):
    """The request names something the gateway may not touch."""

    code = "path_forbidden"


class NotFound(ServiceError):
    """No such job, upload or output."""

    code = "not_found"


class RequestTimedOut(ServiceError):
    """The client sent its body too slowly."""

    code = "request_timeout"


class Conflict(ServiceError):
    """The job's (or upload's) state does not allow this."""

    code = "conflict"


class TooLarge(ServiceError):
    """The request body exceeds a size limit."""

    code = "body_too_large"


class UnsupportedMedia(ServiceError):
    """The upload is not a decodable video."""

    code = "unsupported_media_type"


class RangeNotSatisfiable(ServiceError):
    """A requested byte range lies outside the file."""

    code = "range_not_satisfiable"


class InvalidRequest(ServiceError):
    """The spec, a parameter or the input is invalid."""

    code = "invalid_request"


class TooManyRequests(ServiceError):
    """A concurrency cap is reached; try again later."""

    code = "too_many_requests"


class NotReady(ServiceError):
    """The gateway cannot do this now."""

    code = "not_ready"


class StorageFull(ServiceError):
    """The gateway's disk (or database) has no space left; nothing partial was kept."""

    code = "storage_full"


class StoreError(VdpError):
    """The job store cannot be used (damaged, not a database, held by another gateway)."""


#: Every domain error's HTTP status: the only place the gateway maps one to the other.
_HTTP_STATUS: dict[type[ServiceError], int] = {
    MalformedRequest: 400, Unauthenticated: 401, Forbidden: 403, NotFound: 404,
    RequestTimedOut: 408, Conflict: 409, TooLarge: 413, UnsupportedMedia: 415,
    RangeNotSatisfiable: 416, InvalidRequest: 422, TooManyRequests: 429, NotReady: 503,
    StorageFull: 507,
}


def http_status(exc: ServiceError) -> int:
    """The HTTP status of a domain error (by its class, the nearest mapped base class wins)."""
    for cls in type(exc).__mro__:
        if cls in _HTTP_STATUS:
            return _HTTP_STATUS[cls]
    return 500


def not_found(what: str) -> NotFound:
    return NotFound(what)


def conflict(what: str) -> Conflict:
    return Conflict(what)
