"""``/healthz`` (process alive), ``/readyz`` (can run jobs) and ``/metrics`` (Prometheus)."""
from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from vdp.api import Health, Readiness
from vdp.service.deps import MetricsDep, SettingsDep
from vdp.service.metrics import CONTENT_TYPE
from vdp.service.readiness import preset_weights
from vdp.service.responses import errors
from vdp.service.security import Authenticated

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> Health:
    """The gateway process answers."""
    return Health()


@router.get("/readyz", response_model=Readiness, summary="Readiness",
            responses={503: {"model": Readiness, "description": "Not ready; `problems` says why."}})
async def readyz(request: Request, settings: SettingsDep) -> JSONResponse:
    """Ready when Ray is reachable and the weights of the required presets are present."""
    ray_ok = await run_in_threadpool(request.app.state.ray.reachable)
    presets, problems = await run_in_threadpool(preset_weights, settings.ready_presets)
    if not ray_ok:
        problems.insert(0, request.app.state.ray.error or "Ray is not connected (yet)")
    body = Readiness(ready=ray_ok and all(presets.values()), ray=ray_ok, presets=presets,
                     problems=problems)
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)


@router.get("/metrics", summary="Prometheus metrics", dependencies=[Authenticated],
            response_class=Response,
            responses={200: {"description": "Prometheus text format.",
                             "content": {"text/plain": {"schema": {"type": "string"}}}},
                       **errors(401)})
async def metrics(m: MetricsDep) -> Response:
    """Request counts and latencies, jobs by state, job run times, upload bytes."""
    return Response(await run_in_threadpool(m.render), media_type=CONTENT_TYPE)
