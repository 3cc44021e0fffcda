"""Documented error responses, shared by the routers' OpenAPI declarations."""
from __future__ import annotations

from typing import Any

from vdp.api import ErrorBody

#: Prefix of every versioned route (routes carry it in their own path, so metrics see it).
API_PREFIX = "/v1"

_TEXT = {
    400: "Malformed request (invalid JSON, bad path or name)",
    401: "Missing or invalid bearer token",
    403: "Forbidden path (outside the input roots or the job's directory)",
    404: "No such job, upload or output",
    408: "The request body stalled (upload read timeout)",
    409: "The job's state does not allow this",
    413: "Request body too large",
    415: "Not a decodable video",
    416: "Requested range not satisfiable",
    422: "Invalid spec, parameter or input",
    429: "Too many uploads in progress",
    503: "Not ready",
    507: "The gateway's disk is full (nothing was stored)",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for these error statuses."""
    return {c: {"model": ErrorBody, "description": _TEXT[c]} for c in sorted(set(codes))}
