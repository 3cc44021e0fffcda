"""The page (``/``, ``/jobs/{id}``), sign-in and sign-out, and the page's own API
(``/web/api/...``: presets with their specs and the JobSpec schema, frames of PNG outputs)."""
from __future__ import annotations

import asyncio
import json
import re
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from vdp.api import TERMINAL_STATES
from vdp.errors import SpecError
from vdp.service.deps import ManagerDep, SettingsDep, StoreDep
from vdp.service.errors import (Conflict, Forbidden, InvalidRequest, MalformedRequest, NotFound,
                                Unauthenticated)
from vdp.service.paths import JOB_ID, output_path
from vdp.service.security import Authenticated, check_token
from vdp.service.web.session import (CSRF_HEADER, LOGIN_PATH, cookie_header, same_origin,
                                     session_value)
from vdp.spec import JobSpec, list_presets, load_preset

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/web/api", include_in_schema=False, dependencies=[Authenticated])

#: Headers of every page: scripts, styles and media only from the gateway itself.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; media-src 'self'; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
                               "form-action 'self'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
}
SESSION_MAX_AGE_S = 7 * 24 * 3600
_FRAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,150}\.png$")
_FAILED_LOGIN_DELAY_S = 0.5


@lru_cache(maxsize=None)
def _page(name: str) -> str:
    return resources.files("vdp.service.web").joinpath("static", name).read_text("utf-8")


def _signed_in(request: Request) -> bool:
    token = request.app.state.settings.api_token
    try:
        check_token(None if token is None else token.get_secret_value(),
                    request.headers.get("authorization"))
    except Unauthenticated:
        return False
    return True


def _app_or_login(request: Request) -> HTMLResponse:
    page = "app.html" if _signed_in(request) else "login.html"
    return HTMLResponse(_page(page), headers=PAGE_HEADERS)


@router.get("/")
async def home(request: Request) -> HTMLResponse:
    """The job list and submit form, or the sign-in form."""
    return _app_or_login(request)


@router.get("/jobs/{job_id}")
async def job_page(request: Request, job_id: str) -> HTMLResponse:
    """One job: progress, outputs in place, timings (the page script reads the id from the URL)."""
    return _app_or_login(request)


@router.post(LOGIN_PATH, status_code=204)
async def login(request: Request) -> Response:
    """Check the token in the JSON body ``{"token": ...}`` and set the session cookie."""
    if request.headers.get(CSRF_HEADER) != "1" or not same_origin(dict(request.headers)):
        raise Forbidden.with_code("csrf", f"sign in from the gateway's page (header '{CSRF_HEADER}: 1')")
    try:
        given = json.loads(await request.body()).get("token")
    except (ValueError, AttributeError):
        given = None
    if not isinstance(given, str) or not given:
        raise InvalidRequest('send {"token": "<the gateway token>"}')
    expected = request.app.state.settings.api_token
    if expected is None:
        return Response(status_code=204)
    try:
        check_token(expected.get_secret_value(), f"Bearer {given}")
    except Unauthenticated:
        await asyncio.sleep(_FAILED_LOGIN_DELAY_S)  # slows guessing
        raise Unauthenticated.with_code("invalid_token", "that token is not valid for this gateway") from None
    value = session_value(expected.get_secret_value())
    secure = request.url.scheme == "https"
    return Response(status_code=204, headers={
        "Set-Cookie": cookie_header(value, secure=secure, max_age_s=SESSION_MAX_AGE_S)})


@router.post("/web/logout", status_code=204)
async def logout(request: Request) -> Response:
    """Forget the session cookie."""
    return Response(status_code=204, headers={
        "Set-Cookie": cookie_header("", secure=request.url.scheme == "https", max_age_s=0)})


@api.get("/config")
async def config(settings: SettingsDep) -> JSONResponse:
    """What the submit form needs: presets (with their specs), the JobSpec schema, the input
    roots and the upload limit."""
    return JSONResponse(await run_in_threadpool(_config, settings))


def _config(settings: Any) -> dict[str, Any]:
    presets = {}
    for name, description in list_presets().items():
        try:
            presets[name] = {"description": description, "spec": load_preset(name)}
        except SpecError:
            continue
    return {"presets": presets, "schema": JobSpec.model_json_schema(),
            "input_roots": [str(r) for r in settings.input_roots],
            "max_upload_bytes": settings.max_upload_bytes,
            "auth": settings.api_token is not None}


def _finished_dir(store: Any, manager: Any, job_id: str, folder: str):
    if not JOB_ID.match(job_id):
        raise NotFound(f"no job with id {job_id!r}")
    record = store.get_job(job_id)
    if record is None:
        raise NotFound(f"no job with id {job_id!r}")
    if record.state not in TERMINAL_STATES:
        raise Conflict(f"job {job_id} is {record.state}; its frames can be viewed once it has "
                       "finished")
    path = output_path(manager.job_dir(job_id), folder)
    if not path.is_dir() or path.is_symlink():
        raise MalformedRequest.with_code("not_a_folder", f"output {folder!r} is not a folder of frames")
    return path


@api.get("/jobs/{job_id}/frames/{folder}")
async def list_frames(job_id: str, folder: str, store: StoreDep, manager: ManagerDep) -> JSONResponse:
    """The PNG frame names of a folder output, in order."""
    path = _finished_dir(store, manager, job_id, folder)
    names = await run_in_threadpool(
        lambda: sorted(p.name for p in path.iterdir()
                       if _FRAME.match(p.name) and p.is_file() and not p.is_symlink()))
    return JSONResponse({"folder": folder, "frames": names})


@api.get("/jobs/{job_id}/frames/{folder}/{frame}")
async def get_frame(job_id: str, folder: str, store: StoreDep, manager: ManagerDep,
                    frame: Annotated[str, Path(max_length=160)]) -> FileResponse:
    """One PNG frame of a folder output."""
    path = _finished_dir(store, manager, job_id, folder)
    if not _FRAME.match(frame):
        raise MalformedRequest.with_code("bad_name", f"{frame!r} is not a PNG frame name")
    target = path / frame
    if not target.is_file() or target.is_symlink():
        raise NotFound(f"output {folder!r} has no frame {frame!r}")
    return FileResponse(target, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})
