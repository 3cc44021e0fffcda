"""``/v1/jobs``: submit, list, inspect, follow, cancel and delete jobs."""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from vdp.api import JobList, JobState, JobStatus
from vdp.errors import SpecError
from vdp.service.deps import ManagerDep, MetricsDep, SettingsDep, StoreDep
from vdp.service.errors import InvalidRequest, MalformedRequest, RequestTimedOut, TooLarge, not_found
from vdp.service.responses import API_PREFIX, errors
from vdp.service.sse import job_events
from vdp.service.views import job_status, job_summary
from vdp.spec import JobSpec, list_presets, load_preset

router = APIRouter(prefix=API_PREFIX + "/jobs", tags=["jobs"])
log = logging.getLogger("vdp.service")

MAX_SPEC_BYTES = 1 << 20
#: Deepest nesting of arrays and objects a job spec may have (a real spec needs 4).
MAX_SPEC_DEPTH = 16
#: What a preset name looks like; it is then looked up among the presets the spec knows.
PRESET_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
JobId = Annotated[str, Path(description="Job id (32 hex digits).")]

_SUBMIT_BODY = {
    "requestBody": {
        "required": True,
        "description": "A JobSpec. With `preset`, only the fields to set on top of the preset "
                       "(at least `input`).",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobSpec"}}},
    }
}


#: One server-sent event, as SSE-aware tools see it.
_EVENT_SCHEMA = {
    "type": "object", "required": ["data"],
    "properties": {
        "event": {"type": "string", "enum": ["status", "deleted"]},
        "id": {"type": "string", "description": "The job's version."},
        "data": {"type": "string", "contentMediaType": "application/json",
                 "contentSchema": {"$ref": "#/components/schemas/JobStatus"}},
    },
}


class EventStreamResponse(StreamingResponse):
    media_type = "text/event-stream"


@router.post("", status_code=201, response_model=JobStatus, openapi_extra=_SUBMIT_BODY,
             summary="Submit a job", responses=errors(400, 401, 403, 408, 413, 422, 507))
async def submit_job(request: Request, manager: ManagerDep, metrics: MetricsDep, settings: SettingsDep,
                     preset: Annotated[str | None, Query(
                         pattern=PRESET_NAME,
                         description="Start from this preset (see GET /v1/presets); "
                                     "the body's top-level fields override it.")] = None,
                     ) -> JobStatus:
    """Validate a job spec, check its input, and queue it."""
    body = await read_body(request, MAX_SPEC_BYTES, settings.upload_read_timeout_s)
    data = parse_json_object(body)
    spec = await run_in_threadpool(_build_spec, data, preset)
    record = await run_in_threadpool(manager.submit, spec)
    metrics.submitted.inc()
    return job_status(record)


async def read_body(request: Request, limit: int, read_timeout_s: float) -> bytes:
    """The request body, read as it streams in: 413 as soon as it passes `limit` (or declares
    more), 408 when it stalls for `read_timeout_s`."""
    declared = request.headers.get("content-length")
    too_large = TooLarge.with_code("body_too_large", f"a job spec may be at most {limit} bytes")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    chunks = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), read_timeout_s)
        except StopAsyncIteration:
            return bytes(body)
        except asyncio.TimeoutError:
            raise RequestTimedOut(f"no request data for {read_timeout_s:g} s") from None
        body += chunk
        if len(body) > limit:
            raise too_large


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def parse_json_object(body: bytes) -> dict[str, Any]:
    """A JSON object of at most `MAX_SPEC_DEPTH` levels (400 for bad JSON, 422 for the rest)."""
    try:
        data = json.loads(body, parse_constant=_no_constant)
    except RecursionError:
        data = None
        depth = MAX_SPEC_DEPTH + 1
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedRequest.with_code("invalid_json", f"request body is not valid JSON: {exc}") from None
    else:
        depth = _depth(data)
    if depth > MAX_SPEC_DEPTH:
        raise InvalidRequest.with_code("too_deep", f"the request body nests arrays/objects more than "
                                       f"{MAX_SPEC_DEPTH} levels deep; a job spec needs far fewer")
    if not isinstance(data, dict):
        raise InvalidRequest.with_code("invalid_spec", f"a job spec must be a JSON object, got {type(data).__name__}")
    return data


def _depth(data: Any) -> int:
    """Nesting depth of a parsed JSON value (iterative: no recursion limit)."""
    deepest, todo = 0, [(data, 1)]
    while todo:
        value, level = todo.pop()
        if isinstance(value, (dict, list)):
            deepest = max(deepest, level)
            if level <= MAX_SPEC_DEPTH:
                todo.extend((v, level + 1) for v in (value.values() if isinstance(value, dict) else value))
    return deepest


def _build_spec(data: dict[str, Any], preset: str | None) -> JobSpec:
    if preset is not None:
        known = list_presets()
        if preset not in known:
            raise InvalidRequest.with_code("unknown_preset", f"unknown preset {preset!r}; available: "
                                           f"{', '.join(known) or 'none'}")
        try:
            base = load_preset(preset)
        except SpecError as exc:
            log.error("preset %r cannot be loaded: %s", preset, exc)
            raise InvalidRequest.with_code("unknown_preset", f"preset {preset!r} cannot be loaded "
                                           "(the gateway log has details)") from None
        base.update(data)
        data = base
    try:
        spec = JobSpec.parse(data)
    except SpecError as exc:
        raise InvalidRequest.with_code("invalid_spec", str(exc)) from None
    for stage in ("depth", "refine", "matte"):
        options = getattr(spec.stages, stage)
        if options is not None and options.checkpoint is not None:
            raise InvalidRequest.with_code("invalid_spec", f"stages.{stage}.checkpoint: checkpoint paths cannot be "
                            "set through the gateway (it loads weights from its own model directory)")
    return spec


@router.get("", response_model=JobList, summary="List jobs", responses=errors(401, 422))
async def list_jobs(store: StoreDep,
                    state: Annotated[JobState | None, Query(description="Only jobs in this state.")] = None,
                    limit: Annotated[int, Query(ge=1, le=500, description="Jobs per page.")] = 50,
                    cursor: Annotated[str | None, Query(
                        pattern=r"^[0-9]{1,18}$",
                        description="`next_cursor` of the previous page.")] = None) -> JobList:
    """Jobs, newest first, a page at a time."""
    jobs, next_seq = store.list_jobs(state=state, limit=limit,
                                     before_seq=int(cursor) if cursor else None)
    return JobList(jobs=[job_summary(j) for j in jobs],
                   next_cursor=None if next_seq is None else str(next_seq))


@router.get("/{job_id}", response_model=JobStatus, summary="Job status",
            responses=errors(401, 404))
async def get_job(job_id: JobId, store: StoreDep) -> JobStatus:
    """State, per-stage progress (frames done/total, fps, ETA), error text and spec."""
    record = store.get_job(job_id)
    if record is None:
        raise not_found(f"no job with id {job_id!r}")
    return job_status(record)


@router.get("/{job_id}/events", response_class=EventStreamResponse, summary="Follow a job",
            responses={200: {"description": "`status` events (JobStatus JSON, `id` = version) "
                                            "until the job is final; `: keep-alive` comments between; "
                                            "a `deleted` event if the job is deleted meanwhile.",
                             "content": {"text/event-stream": {"schema": _EVENT_SCHEMA}}},
                       **errors(401, 404)})
async def job_event_stream(job_id: JobId, request: Request, store: StoreDep,
                           settings: SettingsDep) -> EventStreamResponse:
    """Server-sent events of the job's status; the last event has the final state."""
    if store.job_version(job_id) is None:
        raise not_found(f"no job with id {job_id!r}")
    stream = job_events(store, job_id, interval_s=settings.sse_interval_s,
                        heartbeat_s=settings.sse_heartbeat_s, stopping=request.app.state.stopping)
    return EventStreamResponse(stream, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.post("/{job_id}/cancel", response_model=JobStatus, summary="Cancel a job",
             responses=errors(401, 404, 409))
async def cancel_job(job_id: JobId, manager: ManagerDep) -> JobStatus:
    """A queued job is cancelled at once; a running one stops at its next batch
    (``cancel_requested`` is true until it has)."""
    return job_status(await run_in_threadpool(manager.cancel, job_id))


@router.delete("/{job_id}", status_code=204, response_class=Response, summary="Delete a job",
               responses=errors(401, 404, 409))
async def delete_job(job_id: JobId, manager: ManagerDep) -> Response:
    """Remove a finished job and its outputs."""
    await run_in_threadpool(manager.delete, job_id)
    return Response(status_code=204)
