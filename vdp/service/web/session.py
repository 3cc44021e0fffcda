"""Browser sessions: an HttpOnly, SameSite=Strict cookie that stands for the bearer token.

The cookie holds ``HMAC-SHA256(token, "vdp-web-session-v1")``, not the token itself: it is only
good against this gateway and changes when the token does. `SessionCookieMiddleware` turns a
valid cookie into the ``Authorization`` header the API checks, so every route keeps one
authentication path. A request that changes state (any method but GET/HEAD/OPTIONS) with a
cookie must also carry ``X-VDP-CSRF: 1`` (a header other sites cannot send without a CORS
preflight, which the gateway never grants) and, when the browser sends ``Origin``, come from
the gateway's own origin.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from http.cookies import SimpleCookie
from typing import Any, Awaitable, Callable

COOKIE = "vdp_session"
CSRF_HEADER = "x-vdp-csrf"
LOGIN_PATH = "/web/login"
#: Paths whose answer to a stale cookie is a 401 (pages show the sign-in form instead).
API_PATHS = ("/v1/", "/web/api/", "/metrics")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_MSG = b"vdp-web-session-v1"

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


def session_value(token: str) -> str:
    """The cookie value that stands for `token`."""
    return hmac.new(token.encode("utf-8"), _MSG, hashlib.sha256).hexdigest()


def valid_session(token: str, cookie: str | None) -> bool:
    """Whether `cookie` is the session value of `token` (constant-time)."""
    return cookie is not None and hmac.compare_digest(cookie.encode("utf-8", "surrogateescape"),
                                                      session_value(token).encode("ascii"))


def cookie_header(value: str, *, secure: bool, max_age_s: int | None) -> str:
    """A ``Set-Cookie`` value for the session (``max_age_s=0`` deletes it)."""
    parts = [f"{COOKIE}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if max_age_s is not None:
        parts.append(f"Max-Age={max_age_s}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def read_cookie(headers: dict[str, str]) -> str | None:
    raw = headers.get("cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed Cookie header is the same as none
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None


def same_origin(headers: dict[str, str]) -> bool:
    """No ``Origin`` header, or one naming the host the request was sent to (either scheme,
    so a TLS-terminating proxy in front of the gateway does not break the page)."""
    origin = headers.get("origin")
    if origin is None:
        return True
    scheme, sep, host = origin.partition("://")
    return bool(sep) and scheme in ("http", "https") and host == headers.get("host", "")


class SessionCookieMiddleware:
    """ASGI middleware: a request without ``Authorization`` but with a valid session cookie is
    authenticated as if it carried the bearer token (after the CSRF checks above).

    Args:
        app: The wrapped ASGI app.
        token: Returns the configured token (None: authentication is off, nothing to do).
    """

    def __init__(self, app: ASGIApp, token: Callable[[], str | None]) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive, send) -> None:
        token = self.token() if scope["type"] == "http" else None
        if token is None:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        cookie = read_cookie(headers)
        if "authorization" in headers or cookie is None or scope["path"] == LOGIN_PATH:
            await self.app(scope, receive, send)
            return
        if not valid_session(token, cookie):
            if not scope["path"].startswith(API_PATHS):
                await self.app(scope, receive, send)  # pages answer with the sign-in form
                return
            await _deny(send, 401, "invalid_session", "the session cookie is not valid for this "
                        "gateway (the token changed?): sign in again")
            return
        if scope["method"] not in SAFE_METHODS:
            if headers.get(CSRF_HEADER) != "1":
                await _deny(send, 403, "csrf", f"a browser request that changes state must send "
                            f"the header '{CSRF_HEADER}: 1'")
                return
            if not same_origin(headers):
                await _deny(send, 403, "csrf", "cross-origin request refused")
                return
        scope = dict(scope)
        scope["headers"] = [*scope["headers"], (b"authorization", f"Bearer {token}".encode("utf-8"))]
        await self.app(scope, receive, send)


async def _deny(send, status: int, code: str, detail: str) -> None:
    body = json.dumps({"detail": detail, "code": code}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"set-cookie", cookie_header("", secure=False, max_age_s=0).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
