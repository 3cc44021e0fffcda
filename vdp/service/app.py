"""The gateway's FastAPI app: `create_app(settings)` wires store, manager, Ray and routers.

`create_app` locks the data directory (one gateway per store) and opens the store (refusing a
damaged one). Startup (lifespan, which `serve` runs after the port is bound): jobs a previous
gateway left running are queued again, job folders without a record are adopted, stale uploads
go, the workers start, and Ray is connected in the background (workers wait for it; `/readyz`
reports it). Shutdown: event streams end, running jobs stop at their next batch and go back to
the queue, Ray is disconnected.
"""
from __future__ import annotations

import logging
import threading
import uuid
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

import vdp
from vdp.service.deps import StrictQuery
from vdp.service.errors import ServiceError, http_status
from vdp.service.lock import acquire as lock_data_dir
from vdp.service.manager import JobManager, JobRunner, run_with_engine
from vdp.service.metrics import Metrics, MetricsMiddleware
from vdp.service.readiness import RayConnection
from vdp.service.routers import health, jobs, outputs, presets, uploads
from vdp.service.security import Authenticated
from vdp.service.settings import Settings, get_settings
from vdp.service.store import JobStore
from vdp.service.web import install_web

log = logging.getLogger("vdp.service")

_STATUS_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
                 413: "body_too_large", 415: "unsupported_media_type"}


def create_app(settings: Settings | None = None, *, runner: JobRunner = run_with_engine) -> FastAPI:
    """Build the gateway.

    Args:
        settings: Configuration (default: `get_settings()`, from the environment).
        runner: What runs a job (default: the engine on Ray); tests may pass another.

    Returns:
        The ASGI app; its lifespan starts and stops the workers and the Ray connection.
    """
    settings = settings or get_settings()
    for d in (settings.data_dir, settings.jobs_dir, settings.uploads_dir):
        d.mkdir(parents=True, exist_ok=True)
    data_lock = lock_data_dir(settings.data_dir, port=settings.port)
    try:
        store = JobStore(settings.db_path)
    except BaseException:
        data_lock.release()
        raise
    ray_conn = RayConnection(settings.ray_address)
    metrics = Metrics(store.count_by_state, lambda: ray_conn.reachable(timeout_s=0.5))
    manager = JobManager(store, settings, runner=runner, on_finish=metrics.job_finished)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        requeued, cancelled = manager.start()
        if requeued or cancelled:
            log.info("recovered after restart: %d job(s) queued again, %d cancelled",
                     len(requeued), len(cancelled))
        ray_conn.start(on_connected=manager.ready.set)
        sweeper = threading.Thread(target=_sweep_uploads, args=(manager, app.state.stopping),
                                   name="vdp-upload-expiry", daemon=True)
        sweeper.start()
        try:
            yield
        finally:
            app.state.stopping.set()
            manager.stop()
            ray_conn.close()
            store.close()
            data_lock.release()

    app = FastAPI(
        title="vdp gateway", version=vdp.__version__, lifespan=lifespan,
        separate_input_output_schemas=False,
        description="Submit video depth / matting jobs, follow their progress, download outputs. "
                    "Every /v1 route needs `Authorization: Bearer <token>` when the gateway has "
                    "a token (always, when it listens beyond loopback).",
    )
    app.state.settings = settings
    app.state.store = store
    app.state.manager = manager
    app.state.metrics = metrics
    app.state.ray = ray_conn
    app.state.stopping = threading.Event()
    app.state.uploads = UploadSlots(settings.max_concurrent_uploads)

    for module in (jobs, outputs, uploads, presets):
        app.include_router(module.router, dependencies=[Authenticated, StrictQuery])
    app.include_router(health.router, dependencies=[StrictQuery])
    install_web(app)
    app.add_middleware(MetricsMiddleware, metrics=lambda: app.state.metrics)
    _install_error_handlers(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


class UploadSlots:
    """A cap on uploads receiving at once (each holds a connection and a file open)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self._guard = threading.Lock()

    def take(self) -> bool:
        with self._guard:
            if self.active >= self.limit:
                return False
            self.active += 1
            return True

    def give_back(self) -> None:
        with self._guard:
            self.active -= 1


def _sweep_uploads(manager: JobManager, stopping: threading.Event) -> None:
    """Expire unused uploads every few minutes (more often with a short TTL) until shutdown."""
    period = min(300.0, max(0.5, manager.settings.upload_ttl_s / 4))
    while not stopping.wait(period):
        try:
            manager.expire_uploads()
        except Exception:  # a failed sweep is retried at the next period
            log.exception("upload expiry failed")


def _openapi(app: FastAPI) -> dict:
    """FastAPI's schema, with every error response documented as the `ErrorBody` JSON it is."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = FastAPI.openapi(app)
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for operations in schema["paths"].values():
        for op in operations.values():
            # Every route rejects undeclared query parameters (StrictQuery) with a 422.
            op["responses"].setdefault("422", {"description": "Invalid request parameters",
                                               "content": {"application/json": {"schema": error_ref}}})
            for status, response in op.get("responses", {}).items():
                refs = [c.get("schema", {}).get("$ref", "") for c in response.get("content", {}).values()]
                if status[0] in "45" and any(r.endswith(("/ErrorBody", "/HTTPValidationError")) for r in refs):
                    response["content"] = {"application/json": {"schema": error_ref}}
                    if response.get("description") == "Validation Error":
                        response["description"] = "Invalid request parameters"
    for unused in ("HTTPValidationError", "ValidationError"):
        schema["components"]["schemas"].pop(unused, None)
    app.openapi_schema = schema
    return schema


def _install_error_handlers(app: FastAPI) -> None:
    """Every error answers ``{"detail": str, "code": str}``; none carries a traceback."""

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail, "code": exc.code}, status_code=http_status(exc),
                            headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path", "header", "body"))
            problems.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
        return JSONResponse({"detail": "invalid request: " + "; ".join(problems), "code": "invalid_request"},
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _starlette(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        return JSONResponse({"detail": str(exc.detail), "code": code}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        ref = uuid.uuid4().hex[:12]
        log.error("unhandled error %s on %s %s", ref, request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": f"internal error (reference {ref}; the gateway log has details)",
                             "code": "internal"}, status_code=500)
