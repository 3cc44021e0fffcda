"""Connecting to Ray (an existing cluster when RAY_ADDRESS is set, else an embedded local one),
and reading the object store's usage.

Before `ray.init` joins a cluster at an explicit ``host:port`` address, one quick gRPC call to
its GCS (`check_cluster`) finds out whether the cluster is there and whether it requires token
authentication. A token cluster is joined with the token from ``RAY_AUTH_TOKEN``, else the file
``RAY_AUTH_TOKEN_PATH``, else Ray's ``~/.ray/auth_token`` (``RAY_AUTH_MODE=token`` is set for
this process when it was not set: Ray itself enables token mode for explicit addresses only
when told to). Every failure is one `ClusterConnectError` naming what to set, raised within
seconds, instead of Ray's 20 s of retries and a traceback.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import ray

from vdp.errors import VdpError

NAMESPACE = "vdp"
CONNECT_TIMEOUT_S = 5.0
DEFAULT_GCS_PORT = 6379


class ClusterConnectError(VdpError):
    """The Ray cluster cannot be joined: unreachable, not a Ray head, or its token is missing
    or wrong. The message says which and what to set."""


@dataclass(frozen=True)
class ClusterAccess:
    """How to join a cluster, as `check_cluster` found it.

    Attributes:
        address: ``host:port`` of the cluster's GCS.
        token_auth: The cluster requires token authentication.
        token_source: Where the accepted token came from (None without token auth).
    """

    address: str
    token_auth: bool
    token_source: str | None = None


def find_token() -> tuple[str | None, str | None]:
    """The token this process would present, and where it comes from (Ray's own order:
    ``RAY_AUTH_TOKEN``, the file ``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``)."""
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return os.environ["RAY_AUTH_TOKEN"].strip(), "RAY_AUTH_TOKEN"
    path_var = os.environ.get("RAY_AUTH_TOKEN_PATH")
    path = Path(path_var).expanduser() if path_var else Path.home() / ".ray" / "auth_token"
    try:
        token = path.read_text().strip()
    except OSError:
        return None, None
    return (token, str(path)) if token else (None, None)


def _gcs_call(address: str, token: str | None, timeout_s: float) -> tuple[str, str]:
    """One ``GetClusterId`` call to the GCS at `address`: (grpc status name, details)."""
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        meta = [("authorization", f"Bearer {token}")] if token else None
        try:
            stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), metadata=meta, timeout=timeout_s)
        except grpc.RpcError as exc:
            return exc.code().name, exc.details() or ""
    return "OK", ""


def check_cluster(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> ClusterAccess:
    """Find out whether the Ray cluster at `address` (``host[:port]``) answers and which token
    it needs.

    Raises:
        ClusterConnectError: Nothing answers, it is not a Ray GCS, or token auth is on and this
            process has no token or a token the cluster rejects.
    """
    address = address if ":" in address.rsplit("]", 1)[-1] else f"{address}:{DEFAULT_GCS_PORT}"
    status, details = _gcs_call(address, None, timeout_s)
    if status == "OK":
        return ClusterAccess(address, token_auth=False)
    if status != "UNAUTHENTICATED":
        why = ("nothing answered within " f"{timeout_s:g} s" if status == "DEADLINE_EXCEEDED"
               else f"{status}: {details.splitlines()[0] if details else 'no details'}")
        raise ClusterConnectError(f"cannot reach a Ray cluster at {address} ({why}); check "
                                  f"RAY_ADDRESS (the head's host:port) and that the head is running")
    token, source = find_token()
    if token is None:
        raise ClusterConnectError(
            f"the Ray cluster at {address} requires token authentication and no token was found: "
            f"set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token) to the cluster's "
            f"token (`ray get-auth-token` on the head prints it)")
    status, details = _gcs_call(address, token, timeout_s)
    if status == "UNAUTHENTICATED":
        raise ClusterConnectError(f"the Ray cluster at {address} rejected the token from {source}: "
                                  f"set RAY_AUTH_TOKEN to the cluster's token (`ray get-auth-token` "
                                  f"on the head prints it)")
    if status != "OK":
        raise ClusterConnectError(f"the Ray cluster at {address} failed while checking the token "
                                  f"from {source}: {status}: {details}")
    return ClusterAccess(address, token_auth=True, token_source=source)


def _use_token_auth() -> None:
    """Switch this process (and the workers it starts) to token mode before `ray.init`."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
        return
    os.environ["RAY_AUTH_MODE"] = "token"
    try:  # Ray caches its config at import: make it read the mode again
        from ray._raylet import Config

        Config.initialize("")
    except Exception:  # private API: absent or changed in another Ray version
        pass


def _explicit_gcs_address(address: str) -> bool:
    return address not in ("local", "auto") and "://" not in address


def ensure_ray(address: str | None = None, *, num_cpus: int | None = None,
               num_gpus: int | None = None) -> None:
    """Initialise Ray once per process.

    Args:
        address: Cluster address; default ``RAY_ADDRESS`` or, when unset, a new local instance.

    Raises:
        ClusterConnectError: The cluster cannot be joined (see the module docstring).
        num_cpus: CPUs of a new local instance (default: all).
        num_gpus: GPUs of a new local instance (default: detected).
    """
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    kwargs: dict = {"namespace": NAMESPACE, "logging_level": "ERROR", "log_to_driver": True}
    if address == "local":
        kwargs.update(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False)
    elif _explicit_gcs_address(address):
        access = check_cluster(address)
        address = access.address
        if access.token_auth:
            _use_token_auth()
    try:
        ray.init(address=address, **kwargs)
    except ConnectionError as exc:
        raise ClusterConnectError(f"cannot join the Ray cluster at {address}: {exc}") from None


def shutdown_ray() -> None:
    """Disconnect this process (and stop a local instance it started)."""
    if ray.is_initialized():
        ray.shutdown()


def node_resource(node_id: str, name: str) -> float | None:
    """How much of resource `name` (``CPU``, ``object_store_memory`` ...) Ray gives node
    `node_id` (None when Ray does not say)."""
    for node in ray.nodes():
        if node.get("NodeID") == node_id:
            return node.get("Resources", {}).get(name)
    return None


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
