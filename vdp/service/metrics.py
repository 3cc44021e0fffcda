"""Prometheus metrics of the gateway (one registry per app, so tests can run several apps).

HTTP requests are counted per route template (``/v1/jobs/{job_id}``), never per raw path, so
job ids do not explode the label space. Job counts per state are read from the store at
scrape time.
"""
from __future__ import annotations

import time
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _StoreCollector:
    """``vdp_jobs{state}`` and ``vdp_ray_connected`` computed when scraped."""

    def __init__(self, counts: Callable[[], dict[str, int]], ray_ok: Callable[[], bool]) -> None:
        self.counts = counts
        self.ray_ok = ray_ok

    def collect(self):
        jobs = GaugeMetricFamily("vdp_jobs", "Jobs in the store by state", labels=["state"])
        for state, n in self.counts().items():
            jobs.add_metric([state], n)
        yield jobs
        yield GaugeMetricFamily("vdp_ray_connected", "1 when the gateway is connected to Ray",
                                value=1.0 if self.ray_ok() else 0.0)


class Metrics:
    """The gateway's metrics.

    Args:
        job_counts: Returns jobs per state (read at scrape time).
        ray_ok: Returns whether Ray is connected.
    """

    def __init__(self, job_counts: Callable[[], dict[str, int]], ray_ok: Callable[[], bool]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("vdp_http_requests", "HTTP requests", ["method", "route", "status"], registry=r)
        self.latency = Histogram("vdp_http_request_duration_seconds", "HTTP request latency",
                                 ["method", "route"], registry=r,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
        self.submitted = Counter("vdp_jobs_submitted", "Jobs accepted", registry=r)
        self.finished = Counter("vdp_jobs_finished", "Jobs that reached a final state", ["state"], registry=r)
        self.job_seconds = Histogram("vdp_job_run_seconds", "Wall time of job runs", registry=r,
                                     buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600))
        self.upload_bytes = Counter("vdp_upload_bytes", "Bytes received in accepted uploads", registry=r)
        r.register(_StoreCollector(job_counts, ray_ok))

    def job_finished(self, state: str, seconds: float) -> None:
        self.finished.labels(state).inc()
        self.job_seconds.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """ASGI middleware counting requests and their latency per route template."""

    def __init__(self, app: ASGIApp, metrics: Callable[[], Metrics | None]) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            m = self.metrics()
            if m is not None:
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                m.requests.labels(scope["method"], route, str(status)).inc()
                m.latency.labels(scope["method"], route).observe(time.perf_counter() - t0)
