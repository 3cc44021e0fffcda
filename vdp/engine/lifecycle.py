"""Model actors' lifecycle: released after an idle timeout, listed and released on demand.

Idle timeout (`watch_idle`)
    Each `StageActor` runs a watcher thread. The actor counts as used whenever its work
    counters or its open streams change; it is idle while it holds no stream of a live driver.
    After ``resources.actor_idle_s`` idle seconds it kills itself (no restart), which returns
    its GPUs to the cluster. An actor reused by a later job keeps the timeout it was created
    with. 0 or None disables the timeout (the actor lives until released).

Listing and releasing (`list_actors`, `release`, `release_idle`)
    ``vdp actors list|release`` and the gateway's shutdown use these; release waits until Ray
    reports the freed GPUs available.
"""
from __future__ import annotations

import threading
import time
from typing import Any

import ray

from vdp.engine.cluster import NAMESPACE

TICK_S = 1.0  # longest between two looks at an actor's activity


def _fingerprint(actor: Any) -> tuple:
    return (getattr(actor, "frames", 0), getattr(actor, "busy_seconds", 0.0),
            tuple(sorted(getattr(actor, "streams", {}))))


def _live_streams(streams: list[str]) -> list[str]:
    from vdp.engine.placement import live_job_ids

    live = live_job_ids()
    return list(streams) if live is None else [s for s in streams if s.split(":", 1)[0] in live]


def watch_idle(actor: Any, idle_s: float | None) -> None:
    """Start `actor`'s idle watcher (call in the actor's ``__init__``): sets
    ``actor.last_used`` / ``actor.idle_timeout_s`` and kills the actor after `idle_s` idle
    seconds (see the module docstring)."""
    actor.last_used = time.time()
    actor.idle_timeout_s = idle_s or None
    if not idle_s:
        return
    handle = ray.get_runtime_context().current_actor

    def watch() -> None:
        seen = _fingerprint(actor)
        while True:
            time.sleep(min(TICK_S, idle_s / 4))
            now = _fingerprint(actor)
            if now != seen:
                seen, actor.last_used = now, time.time()
                continue
            if time.time() - actor.last_used < idle_s or _live_streams(list(now[2])):
                continue
            ray.kill(handle, no_restart=True)
            return

    threading.Thread(target=watch, name="vdp-idle-watch", daemon=True).start()


def idle_info(actor: Any) -> dict[str, Any]:
    """What `StageActor.info` adds about the lifecycle."""
    return {"last_used": getattr(actor, "last_used", None),
            "idle_timeout_s": getattr(actor, "idle_timeout_s", None)}


def actor_names() -> list[str]:
    """Names of vdp's named actors on the cluster."""
    return sorted(e["name"] for e in ray.util.list_named_actors(all_namespaces=True)
                  if e["namespace"] == NAMESPACE and e["name"].startswith("vdp:"))


def list_actors() -> list[dict[str, Any]]:
    """Every vdp actor with its state (``idle``, ``busy``: serving a live driver's stream, or
    ``unreachable``: not answering now) and what its `info` reports."""
    from vdp.engine.placement import _probe

    rows = []
    for name in actor_names():
        info = _probe(name)
        if info is None:
            rows.append({"name": name, "state": "unreachable"})
            continue
        state = "busy" if _live_streams(info.get("streams", [])) else "idle"
        rows.append({"name": name, "state": state, "node_id": info.get("node_id"),
                     "pid": info.get("pid"), "device": info.get("device"),
                     "resources": info.get("resources", {}), "frames": info.get("frames"),
                     "last_used": info.get("last_used"), "idle_timeout_s": info.get("idle_timeout_s")})
    return rows


def release(names: list[str], wait_s: float = 20.0) -> list[str]:
    """Kill the named vdp actors (exact names) and wait until their GPUs are free again.

    Returns:
        The names that existed and were killed.
    """
    from vdp.engine.placement import _probe

    gpus, killed = 0.0, []
    before = float(ray.available_resources().get("GPU", 0.0))
    for name in names:
        info = _probe(name) or {}
        try:
            ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
        except ValueError:
            continue
        killed.append(name)
        gpus += float(info.get("resources", {}).get("GPU", 0.0))
    deadline = time.monotonic() + wait_s
    while gpus and time.monotonic() < deadline:
        if float(ray.available_resources().get("GPU", 0.0)) >= before + gpus - 1e-9:
            break
        time.sleep(0.1)
    return killed


def release_idle(wait_s: float = 20.0) -> list[str]:
    """Release every vdp actor that serves no live driver (the gateway's shutdown)."""
    return release([r["name"] for r in list_actors() if r["state"] == "idle"], wait_s=wait_s)
