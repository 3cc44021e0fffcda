"""vdp's metrics through Ray (`ray.util.metrics`): exported by every node's metrics agent in
Prometheus format (``ray start --metrics-export-port``), next to Ray's own, with the ``ray_``
prefix Ray gives application metrics; deploy/grafana/vdp-dashboard.json charts them.

Model actors (tags ``job``, ``stage``, ``replica``, ``node``):
    ``vdp_stage_frames`` (counter), ``vdp_stage_busy_seconds`` (counter: time inside the model),
    ``vdp_stage_fps`` (gauge: frames per busy second of the last batch), ``vdp_stage_fallbacks``
    (counter, also tagged ``kind``: fallbacks a stage reported, e.g. a precision it could not use).
Drivers (`vdp run`, the gateway; tags ``job``, ``stage``, ``node``; ``stage`` is ``decode``,
``write`` or a model stage as the driver sees it):
    ``vdp_driver_frames`` (counter), ``vdp_driver_busy_seconds`` (counter), ``vdp_driver_fps``
    (gauge: the stage's frames per busy second so far - decode and encode fps).

Drivers on Ray (tags ``job``, ``node``): ``vdp_batches_in_flight`` and
``vdp_object_store_bytes_in_flight`` (gauges: the job's batches submitted to its actors and not
yet back, and their estimated object-store bytes; see `vdp.engine.budget`).

``job`` is the Ray job id of the driver. Nothing is recorded when Ray is not initialised (local
runs). Recording never raises: metrics must not fail a job.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger("vdp.metrics")

_lock = threading.Lock()
_metrics: dict[str, Any] = {}
_driver_totals: dict[tuple[str, str], list[float]] = {}

ACTOR_TAGS = ("job", "stage", "replica", "node")
DRIVER_TAGS = ("job", "stage", "node")


def _metric(kind: str, name: str, description: str, tags: tuple[str, ...]) -> Any:
    with _lock:
        if name not in _metrics:
            from ray.util import metrics

            cls = {"counter": metrics.Counter, "gauge": metrics.Gauge}[kind]
            _metrics[name] = cls(name, description=description, tag_keys=tags)
        return _metrics[name]


def _ray_ready() -> bool:
    try:
        import ray

        return ray.is_initialized()
    except Exception:
        return False


def _context() -> dict[str, str]:
    import ray

    ctx = ray.get_runtime_context()
    return {"node": ctx.get_node_id() or "", "job": ctx.get_job_id() or ""}


def record_batch(stage: str, stream_id: str, frames: int, seconds: float) -> None:
    """In a model actor: one processed batch of `stream_id` (its driver's job id comes first)."""
    if frames <= 0 and seconds <= 0:
        return
    try:
        import ray

        ctx = ray.get_runtime_context()
        tags = {"job": stream_id.split(":", 1)[0], "stage": stage,
                "replica": ctx.get_actor_name() or "", "node": ctx.get_node_id() or ""}
        _metric("counter", "vdp_stage_frames", "Frames a model actor processed.", ACTOR_TAGS).inc(frames, tags)
        if seconds > 0:
            _metric("counter", "vdp_stage_busy_seconds", "Seconds a model actor spent in its model.",
                    ACTOR_TAGS).inc(seconds, tags)
            if frames > 0:
                _metric("gauge", "vdp_stage_fps", "Frames per busy second of the actor's last batch.",
                        ACTOR_TAGS).set(frames / seconds, tags)
    except Exception as exc:  # metrics never fail a job
        log.debug("vdp metrics: %s", exc)


def record_fallbacks(stage: str, stream_id: str, fallbacks: list[dict]) -> None:
    """In a model actor: the fallbacks its stage reported for a stream."""
    if not fallbacks:
        return
    try:
        import ray

        ctx = ray.get_runtime_context()
        for fb in fallbacks:
            tags = {"job": stream_id.split(":", 1)[0], "stage": stage,
                    "replica": ctx.get_actor_name() or "", "node": ctx.get_node_id() or "",
                    "kind": str(fb.get("reason") or "fallback")}
            _metric("counter", "vdp_stage_fallbacks", "Fallbacks a stage reported.",
                    (*ACTOR_TAGS, "kind")).inc(1, tags)
    except Exception as exc:
        log.debug("vdp metrics: %s", exc)


def record_driver(stage: str, frames: int, busy_seconds: float) -> None:
    """In a driver: `frames` more of `stage` (decode, write, a model stage) took `busy_seconds`."""
    if (frames <= 0 and busy_seconds <= 0) or not _ray_ready():
        return
    try:
        tags = {**_context(), "stage": stage}
        if frames > 0:
            _metric("counter", "vdp_driver_frames", "Frames a driver decoded, received or wrote.",
                    DRIVER_TAGS).inc(frames, tags)
        if busy_seconds > 0:
            _metric("counter", "vdp_driver_busy_seconds", "Seconds a driver's stage was busy.",
                    DRIVER_TAGS).inc(busy_seconds, tags)
        with _lock:
            total = _driver_totals.setdefault((tags["job"], stage), [0.0, 0.0])
            total[0] += max(frames, 0)
            total[1] += max(busy_seconds, 0.0)
            fps = total[0] / total[1] if total[1] > 0 else None
        if fps is not None:
            _metric("gauge", "vdp_driver_fps", "A driver stage's frames per busy second (decode, encode).",
                    DRIVER_TAGS).set(fps, tags)
    except Exception as exc:
        log.debug("vdp metrics: %s", exc)


def record_in_flight(batches: int, nbytes: int) -> None:
    """In a driver on Ray: its job's batches in flight and their estimated object-store bytes."""
    if not _ray_ready():
        return
    try:
        tags = _context()
        _metric("gauge", "vdp_batches_in_flight", "Batches a job has in flight on its actors.",
                ("job", "node")).set(batches, tags)
        _metric("gauge", "vdp_object_store_bytes_in_flight",
                "Estimated object-store bytes of a job's batches in flight.", ("job", "node")).set(nbytes, tags)
    except Exception as exc:
        log.debug("vdp metrics: %s", exc)
