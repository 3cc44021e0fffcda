"""Connecting to Ray: an existing cluster when RAY_ADDRESS is set, else an embedded local one."""
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
