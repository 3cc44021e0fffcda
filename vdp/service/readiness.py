"""What `/readyz` checks: the Ray connection and the presence of the presets' weights."""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout
from typing import Any, Callable

from vdp.errors import SpecError
from vdp.spec import list_presets, load_preset

log = logging.getLogger("vdp.service")


class RayConnection:
    """Connects this process to Ray in the background and answers "is it reachable?".

    Args:
        address: Cluster address (None: ``RAY_ADDRESS`` or a new local instance).
        retry_s: Pause between failed connection attempts.
    """

    def __init__(self, address: str | None, *, retry_s: float = 5.0) -> None:
        self.address = address
        self.retry_s = retry_s
        self.error: str | None = None
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._probe = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vdp-ray-probe")
        self._cache: tuple[float, bool] = (0.0, False)
        self._thread: threading.Thread | None = None

    def start(self, on_connected: Callable[[], None]) -> None:
        """Connect in a thread; call `on_connected` once connected.

        The thread stays alive until `close`: Ray ties the processes of a local instance to
        the thread that started them (parent-death signal), so it must not exit early.
        """
        def connect() -> None:
            from vdp.engine.cluster import ensure_ray

            while not self._stop.is_set():
                try:
                    ensure_ray(self.address)
                except Exception as exc:  # any failure to connect is retried, and reported by /readyz
                    self.error = f"cannot connect to Ray: {type(exc).__name__}: {exc}"
                    log.warning("%s (retrying in %.0f s)", self.error, self.retry_s)
                    self._stop.wait(self.retry_s)
                    continue
                self.error = None
                self.connected.set()
                on_connected()
                self._stop.wait()
                return

        self._thread = threading.Thread(target=connect, name="vdp-ray-connect", daemon=True)
        self._thread.start()

    def reachable(self, timeout_s: float = 2.0) -> bool:
        """Whether the cluster answers (cached for a second)."""
        if not self.connected.is_set():
            return False
        stamp, ok = self._cache
        if time.monotonic() - stamp < 1.0:
            return ok
        future = self._probe.submit(_ray_answers)
        try:
            ok = future.result(timeout=timeout_s)
        except FutureTimeout:
            ok = False
        self._cache = (time.monotonic(), ok)
        return ok

    def close(self) -> None:
        """Stop connecting and disconnect (a local instance this process started stops too)."""
        self._probe.shutdown(wait=False, cancel_futures=True)
        if self.connected.is_set():
            from vdp.engine.cluster import shutdown_ray
            from vdp.engine.lifecycle import release_idle

            if self.address and self.address != "local":  # an embedded instance takes them down anyway
                try:  # the gateway's model actors give their GPUs back
                    released = release_idle(wait_s=5.0)
                    if released:
                        log.info("released %d idle model actor(s): %s", len(released), ", ".join(released))
                except Exception as exc:  # the cluster may already be gone
                    log.warning("could not release the model actors: %s", exc)
            shutdown_ray()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)


def _ray_answers() -> bool:
    import ray

    try:
        return ray.is_initialized() and bool(ray.cluster_resources())
    except Exception:  # any error from the cluster means: not reachable now
        return False


def checkpoints_for(spec_data: dict[str, Any]) -> list[str]:
    """Registry names of the official checkpoints a spec mapping needs (synthetic ones: none)."""
    stages = spec_data.get("stages") or {}
    names = []
    depth = stages.get("depth")
    if isinstance(depth, dict) and not depth.get("synthetic_weights") and not depth.get("checkpoint"):
        names.append(str(depth.get("model", "vits")))
    matte = stages.get("matte")
    if isinstance(matte, dict) and not matte.get("synthetic_weights") and not matte.get("checkpoint"):
        names.append(f"rvm_{matte.get('variant', 'mobilenetv3')}")
    return names


def preset_weights(presets: list[str] | None) -> tuple[dict[str, bool], list[str]]:
    """For each preset (None: all), whether its checkpoints are in the model directory.

    Returns:
        ``{preset: ready}`` and the problems found (missing files, unknown presets).
    """
    from vdp.errors import WeightsError
    from vdp.models.weights import resolve_checkpoint

    names = list(list_presets()) if presets is None else presets
    ready, problems = {}, []
    for name in names:
        try:
            needed = checkpoints_for(load_preset(name))
        except SpecError:
            ready[name] = False
            problems.append(f"preset {name!r} does not exist")
            continue
        missing = []
        for ckpt in needed:
            try:
                resolve_checkpoint(ckpt)
            except WeightsError:
                missing.append(ckpt)
        ready[name] = not missing
        if missing:
            problems.append(f"preset {name!r}: checkpoints {missing} missing from the gateway's "
                            "model directory (see `vdp models fetch`)")
    return ready, problems
