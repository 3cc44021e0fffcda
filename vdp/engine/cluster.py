"""Connecting to Ray (an existing cluster when RAY_ADDRESS is set, else an embedded local one),
and reading the object store's usage."""
from __future__ import annotations

import os

import ray

NAMESPACE = "vdp"


def ensure_ray(address: str | None = None, *, num_cpus: int | None = None,
               num_gpus: int | None = None) -> None:
    """Initialise Ray once per process.

    Args:
        address: Cluster address; default ``RAY_ADDRESS`` or, when unset, a new local instance.
        num_cpus: CPUs of a new local instance (default: all).
        num_gpus: GPUs of a new local instance (default: detected).
    """
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    kwargs: dict = {"namespace": NAMESPACE, "logging_level": "ERROR", "log_to_driver": True}
    if address == "local":
        kwargs.update(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False)
    ray.init(address=address, **kwargs)


def shutdown_ray() -> None:
    """Disconnect this process (and stop a local instance it started)."""
    if ray.is_initialized():
        ray.shutdown()


def object_store_stats() -> dict[str, int] | None:
    """Object-store bytes, summed over the cluster (None when Ray cannot tell).

    ``primary_bytes`` are the objects that must stay (referenced primary copies: what Ray
    would spill under pressure, its "needed"); ``used_bytes`` also counts released objects Ray
    keeps as an evictable cache until it needs the space; ``spilled_bytes`` and
    ``restored_bytes`` are totals since the cluster started. Uses Ray's internal memory-info
    call (the numbers behind ``ray memory --stats-only``).
    """
    try:
        from ray._private.internal_api import get_memory_info_reply, get_state_from_address

        reply = get_memory_info_reply(get_state_from_address(ray.get_runtime_context().gcs_address))
        s = reply.store_stats
        return {"used_bytes": int(s.object_store_bytes_used),
                "primary_bytes": int(s.object_store_bytes_primary_copy),
                "spilled_bytes": int(s.spilled_bytes_total),
                "restored_bytes": int(s.restored_bytes_total)}
    except Exception:  # private API: absent or changed in another Ray version
        return None
