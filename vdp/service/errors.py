"""The gateway's error type: an HTTP status, a short code and a message (never a traceback)."""
from __future__ import annotations

from vdp.errors import VdpError


class HttpError(VdpError):
    """An error the gateway answers with ``{"detail": ..., "code": ...}``.

    Args:
        status: HTTP status code.
        code: Short machine-readable reason (``not_found``, ``path_forbidden`` ...).
        detail: What went wrong, in words.
        headers: Extra response headers (e.g. ``WWW-Authenticate``).
    """

    def __init__(self, status: int, code: str, detail: str, *,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}


def not_found(what: str) -> HttpError:
    return HttpError(404, "not_found", what)


def conflict(what: str) -> HttpError:
    return HttpError(409, "conflict", what)
