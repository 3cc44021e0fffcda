"""The page's session cookie and its own endpoints, over real HTTP (no browser)."""
from __future__ import annotations

import httpx
import pytest

from tests.service.gateway import TOKEN
from vdp.service.web.session import COOKIE, same_origin, session_value, valid_session

CSRF = {"X-VDP-CSRF": "1"}


def test_the_cookie_value_is_bound_to_the_token_and_is_not_the_token():
    value = session_value(TOKEN)
    assert TOKEN not in value and valid_session(TOKEN, value)
    assert not valid_session(TOKEN + "x", value) and not valid_session(TOKEN, None)
    assert not valid_session(TOKEN, value[:-1] + ("0" if value[-1] != "0" else "1"))


@pytest.mark.parametrize("origin, ok", [(None, True), ("http://gw:8000", True), ("https://gw:8000", True),
                                        ("http://evil:8000", False), ("null", False), ("ftp://gw:8000", False)])
def test_same_origin(origin, ok):
    headers = {"host": "gw:8000"} | ({"origin": origin} if origin else {})
    assert same_origin(headers) is ok


@pytest.fixture()
def anon(web_gateway):
    with httpx.Client(base_url=web_gateway.url, timeout=30) as c:
        yield c


def signed_in(client: httpx.Client) -> httpx.Client:
    r = client.post("/web/login", json={"token": TOKEN}, headers=CSRF)
    assert r.status_code == 204, r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    return client


def test_login_needs_the_page_header_and_the_right_token(anon):
    assert anon.post("/web/login", json={"token": TOKEN}).json()["code"] == "csrf"
    assert anon.post("/web/login", json={"token": TOKEN}, headers={**CSRF, "Origin": "http://evil.example"}
                     ).status_code == 403
    r = anon.post("/web/login", json={"token": "wrong-token-0123456789"}, headers=CSRF)
    assert r.status_code == 401 and r.json()["code"] == "invalid_token" and COOKIE not in anon.cookies
    assert anon.post("/web/login", content=b"not json", headers=CSRF).status_code == 422
    assert "Sign in" in anon.get("/").text


def test_the_cookie_authenticates_reads_and_guarded_writes(anon):
    signed_in(anon)
    assert anon.get("/v1/jobs").status_code == 200
    assert "New job" in anon.get("/").text
    missing = "0" * 32
    assert anon.post(f"/v1/jobs/{missing}/cancel").json()["code"] == "csrf"
    assert anon.post(f"/v1/jobs/{missing}/cancel", headers={**CSRF, "Origin": "http://evil.example"}
                     ).json()["code"] == "csrf"
    assert anon.post(f"/v1/jobs/{missing}/cancel", headers=CSRF).status_code == 404
    # A bearer token still works alongside (and wins over) a cookie; a stale cookie is refused.
    anon.cookies.set(COOKIE, "0" * 64)
    r = anon.get("/v1/jobs")
    assert r.status_code == 401 and r.json()["code"] == "invalid_session"
    assert anon.get("/v1/jobs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert "Sign in" in anon.get("/").text


def test_page_endpoints_need_a_session_and_reject_bad_names(anon):
    assert anon.get("/web/api/config").status_code == 401
    signed_in(anon)
    config = anon.get("/web/api/config").json()
    assert "depth" in config["presets"] and config["schema"]["title"] == "JobSpec"
    missing = "0" * 32
    assert anon.get(f"/web/api/jobs/{missing}/frames/depth_png16").status_code == 404
    assert anon.get("/web/api/jobs/nope/frames/x").status_code == 404
    assert anon.get(f"/web/api/jobs/{missing}/frames/..%2F..").status_code in (400, 404)


def test_logout_forgets_the_cookie(anon):
    signed_in(anon)
    r = anon.post("/web/logout", headers=CSRF)
    assert r.status_code == 204 and "Max-Age=0" in r.headers["set-cookie"]
    assert anon.get("/v1/jobs").status_code == 401
