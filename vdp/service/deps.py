"""FastAPI dependencies as `Annotated` aliases (the app keeps its parts on ``app.state``)."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from vdp.service.manager import JobManager
from vdp.service.metrics import Metrics
from vdp.service.settings import Settings
from vdp.service.store import JobStore


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _store(request: Request) -> JobStore:
    return request.app.state.store


def _manager(request: Request) -> JobManager:
    return request.app.state.manager


def _metrics(request: Request) -> Metrics:
    return request.app.state.metrics


SettingsDep = Annotated[Settings, Depends(_settings)]
StoreDep = Annotated[JobStore, Depends(_store)]
ManagerDep = Annotated[JobManager, Depends(_manager)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]


def _query_names(dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def reject_unknown_query(request: Request) -> None:
    """Dependency: a query parameter the route does not declare is an error (catches typos
    such as ``?stat=queued`` that would otherwise be ignored)."""
    from vdp.service.errors import InvalidRequest

    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None or not request.query_params:
        return
    allowed = _query_names(dependant)
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise InvalidRequest.with_code("invalid_request", f"unknown query parameter(s) {unknown}; this route "
                        f"accepts {sorted(allowed) or 'none'}")


StrictQuery = Depends(reject_unknown_query)
