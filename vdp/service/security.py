"""Bearer-token authentication (constant-time compare) as a FastAPI dependency."""
from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vdp.service.errors import Unauthenticated

#: Declares the scheme in the OpenAPI schema; checking is ours (so the messages are too).
bearer_scheme = HTTPBearer(auto_error=False, description="VDP_API_TOKEN of the gateway")

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="vdp"'}


def check_token(expected: str | None, authorization: str | None) -> None:
    """Accept the request when no token is configured or `authorization` carries it.

    Args:
        expected: The configured token (None: authentication is off).
        authorization: The request's ``Authorization`` header.

    Raises:
        Unauthenticated: when the header is missing, not a bearer token, or wrong.
    """
    if expected is None:
        return
    if not authorization:
        raise Unauthenticated.with_code("missing_token", "this gateway requires a bearer token: send "
                        "'Authorization: Bearer <token>'", headers=_CHALLENGE)
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise Unauthenticated.with_code("missing_token", "the Authorization header must be 'Bearer <token>'",
                        headers=_CHALLENGE)
    if not hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"),
                               expected.encode("utf-8")):
        raise Unauthenticated.with_code("invalid_token", "the bearer token is not valid for this gateway",
                        headers={"WWW-Authenticate": 'Bearer realm="vdp", error="invalid_token"'})


def require_token(request: Request,
                  _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]) -> None:
    """FastAPI dependency: the request carries the gateway's token (when one is set)."""
    token = request.app.state.settings.api_token
    check_token(None if token is None else token.get_secret_value(),
                request.headers.get("authorization"))


Authenticated = Depends(require_token)
