"""CPU cores on CPU-only Ray runs: stage actors take turns on their node, the driver idles.

Without a GPU every stage actor computes with torch on its node's cores. Each one using all
cores at once (depth and matte side by side, plus the driver's decoding and encoding) gives
every core several runnable threads, and torch's threads spin at barriers waiting for the one
that was preempted: measured on 2 cores, depth+matte through Ray took 4.5 s per depth frame
against about 1 s in one process.

The allotment (`CpuAllotment`):

- **Turns**: the stage actors of one node compute one at a time, each call under a node-wide
  lock (`CpuTurn`, an ``flock`` on a file named after the Ray node), so the threads computing at
  any moment are those of one actor and never more than the node's cores.
- **Threads**: each actor's torch intra-op threads are the node's cores (the smaller of the
  Ray node's CPU resource and the process's CPU affinity; ``resources.threads`` when set, at
  most the cores), and one inter-op thread.
- **Decoding and writing** run at idle priority (`vdp.idle`), as on the local path, wherever
  they run (the driver, the first stage's actor, the writer actor): they take the cores only
  while no actor computes (a decoding thread that waits seconds for a core is replaced by
  the stage's own thread, `vdp.engine.prefetch.decode_in_idle_time`).

`vdp.engine.job_run` records the allotment and each actor's thread counts under
``placement.cpu`` in report.json.
"""
from __future__ import annotations

import fcntl
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INTEROP_THREADS = 1


@dataclass(frozen=True)
class CpuAllotment:
    """How a CPU-only Ray job shares each node's cores (see the module docstring).

    Attributes:
        threads: torch intra-op threads per actor (None: the cores of the actor's node).
        interop_threads: torch inter-op threads per actor.
        turns: Stage actors on one node compute one at a time.
        driver_idle: The driver decodes and writes at idle priority.
    """

    threads: int | None
    interop_threads: int = INTEROP_THREADS
    turns: bool = True
    driver_idle: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"policy": "turns" if self.turns else "shared",
                "torch_threads": self.threads or "node cores",
                "interop_threads": self.interop_threads, "driver_idle_priority": self.driver_idle}


def node_cores(ray_node_cpus: float | None = None) -> int:
    """Cores this process may use: its CPU affinity, capped by the Ray node's CPU resource."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if ray_node_cpus:
        cores = min(cores, int(ray_node_cpus))
    return max(1, cores)


def actor_threads(requested: int | None, cores: int) -> int:
    """torch intra-op threads of a CPU actor taking turns: `requested` (at most `cores`), else
    `cores`; at least 1."""
    return max(1, min(requested or cores, cores))


class CpuTurn:
    """A node-wide turn for CPU compute: ``with turn:`` blocks while another actor of the node
    computes. Held as an exclusive ``flock`` on ``<tmp>/vdp-cpu-turn-<node>.lock``; the kernel
    drops it when the holder's process dies, so a killed actor never blocks the others.

    Attributes:
        waited_seconds: Time spent waiting for turns so far.
        turns: Turns taken so far.
        intervals: (start, end) wall times of the last turns (at most `keep`).
    """

    def __init__(self, node_id: str, keep: int = 256) -> None:
        self.path = Path(tempfile.gettempdir()) / f"vdp-cpu-turn-{node_id}.lock"
        self._fd: int | None = None
        self._keep = keep
        self._start = 0.0
        self.waited_seconds = 0.0
        self.turns = 0
        self.intervals: list[tuple[float, float]] = []

    def __enter__(self) -> "CpuTurn":
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        t0 = time.monotonic()
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self.waited_seconds += time.monotonic() - t0
        self._start = time.time()
        return self

    def __exit__(self, *exc: object) -> None:
        end = time.time()
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self.turns += 1
        self.intervals.append((self._start, end))
        del self.intervals[:-self._keep]

    def to_dict(self) -> dict[str, Any]:
        return {"turns": self.turns, "waited_seconds": round(self.waited_seconds, 3)}
