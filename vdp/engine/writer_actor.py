"""WriterActor: the chunk writers of one node, in one Ray actor placed beside the stage replicas.

Results of the last stage go from its actor to this one through the node's object store (the
driver passes refs, never data); each chunk's `vdp.engine.chunk_writer.ChunkWriter` runs on a
thread of its own, so encoders of different chunks run in parallel and never hold up the
stage actor. Calls that wait for a chunk's own frames (`join`, `finish`) wait on that chunk's
lock with a deadline; the actor serves several calls at once (``max_concurrency``).
"""
from __future__ import annotations

import os
import threading
from contextlib import nullcontext
from typing import Any

import ray

from vdp.engine.chunk_writer import ChunkWriter, StoreLoan, WriteRequest, WriteStats
from vdp.engine.cluster import node_resource
from vdp.engine.merge import Fit
from vdp.errors import JobTimeoutError, VdpError
from vdp.types import FrameBatch


#: Share of the node's object store that held results may keep borrowed (`StoreLoan`).
STORE_LOAN_SHARE = 0.25


class WriterLostError(VdpError):
    """The writer holds no such chunk (its process restarted, or the chunk was aborted)."""


class _Slot:
    """One chunk's writer, its lock and the condition its waiters wait on."""

    def __init__(self, writer: ChunkWriter, idle: bool = False) -> None:
        self.writer = writer
        self.idle = idle  # written at idle priority (CPU-only nodes, where the models need the cores)
        self.cond = threading.Condition()
        self.error: BaseException | None = None
        self.next_seq = 0  # threaded actors run calls in any order: batches are taken by number


@ray.remote(max_restarts=0, max_concurrency=32, num_cpus=0)
class WriterActor:
    """Holds the chunk writers of the jobs whose chunks run on this node; like the stage actors
    it outlives a job (named per node) and leaves after `idle_s` idle seconds
    (`vdp.engine.lifecycle`)."""

    def __init__(self, idle_s: float | None = None) -> None:
        from vdp.engine.lifecycle import watch_idle
        from vdp.host_memory import return_large_buffers
        from vdp.types import borrow_store_memory

        borrow_store_memory()  # the chunk writers only read results (and copy what they keep)
        return_large_buffers()
        self.slots: dict[str, _Slot] = {}
        self.frames = 0  # frames taken, for the idle watcher
        self.where = {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}
        store = node_resource(self.where["node_id"], "object_store_memory") or 0
        self.loan = StoreLoan(int(STORE_LOAN_SHARE * store))
        self._lock = threading.Lock()
        watch_idle(self, idle_s)

    @property
    def streams(self) -> dict[str, _Slot]:
        """Chunk runs held, keyed ``<Ray job id>:...`` (the idle watcher's view of live work)."""
        return self.slots

    def info(self) -> dict[str, Any]:
        """Node, process and the CPU seconds it used (its encoders' subprocesses included)."""
        import resource

        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
        return {**self.where, "cpu_seconds": round(cpu, 3), "device": "cpu", "streams": list(self.slots),
                "frames": self.frames, "last_used": self.last_used, "idle_timeout_s": self.idle_timeout_s,
                "store_loan": {"limit": self.loan.limit, "used": self.loan.used}}

    def begin(self, key: str, request: WriteRequest, idle: bool = False) -> None:
        """Open the parts of a chunk run (`key`); with `idle`, write at idle priority (CPU-only
        nodes, where the models need the cores)."""
        writer = ChunkWriter(request, self.where, self.loan)
        with self._lock:
            old = self.slots.pop(key, None)
            self.slots[key] = _Slot(writer, idle)
        if old is not None:
            old.writer.abort()

    def add(self, key: str, seq: int, batch: FrameBatch | None, timeout_s: float = 600.0) -> dict[str, Any]:
        """Result batch number `seq` (0, 1, ...) of a chunk run (Ray resolves the stage actor's
        ref to the batch here); waits for the ones before it.

        Returns:
            Small facts for the driver: frames, whether the chunk is complete, the head (as a
            ref, once), chunk 0's ranges (once) and bytes held.
        """
        slot = self._wait(key, timeout_s, lambda s: s.next_seq == seq)
        with slot.cond, self._priority(slot):
            self._check(slot)
            try:
                if batch is not None:
                    slot.writer.add(batch)
                    self.frames += len(batch)
            except BaseException as exc:
                slot.error = exc
                raise
            finally:
                slot.next_seq += 1
                slot.cond.notify_all()
            w = slot.writer
            head = w.take_head()
            return {"frames": 0 if batch is None else len(batch), "complete": w.complete,
                    "head": None if head is None else ray.put(head), "ranges": w.take_ranges(),
                    "held_bytes": w.held_bytes, "stored": w.take_stored(), "written": w.take_written()}

    def set_map(self, key: str, fits: dict[str, Fit], ranges: list[dict]) -> dict[str, Any]:
        """The chunk's map and chunk 0's ranges: held results are written now."""
        slot = self._slot(key)
        with slot.cond, self._priority(slot):
            self._check(slot)
            try:
                slot.writer.set_map(fits, ranges)
            except BaseException as exc:
                slot.error = exc
                raise
            finally:
                slot.cond.notify_all()
            return {"held_bytes": slot.writer.held_bytes, "ranges": slot.writer.take_ranges(),
                    "written": slot.writer.take_written()}

    def join(self, key: str, head: FrameBatch | None, timeout_s: float) -> dict[str, Any]:
        """Fit the next chunk's head to this chunk's tail and write it (waits, up to `timeout_s`,
        until this chunk has all its frames and its map)."""
        slot = self._wait(key, timeout_s, lambda s: s.writer.complete and s.writer.fits is not None)
        with slot.cond, self._priority(slot):
            try:
                fits, record, warnings = slot.writer.join(head)
            except BaseException as exc:
                slot.error = exc
                raise
            return {"fits": fits, "seam": record, "warnings": warnings, "ranges": slot.writer.take_ranges(),
                    "written": slot.writer.take_written()}

    def finish(self, key: str, timeout_s: float) -> WriteStats:
        """Close the chunk's parts; returns its statistics (the slot is dropped)."""
        slot = self._wait(key, timeout_s, lambda s: s.writer.complete and s.writer.fits is not None)
        with slot.cond, self._priority(slot):
            try:
                return slot.writer.finish()
            finally:
                with self._lock:
                    self.slots.pop(key, None)

    def abort(self, key: str) -> None:
        """Drop a chunk run and its parts."""
        with self._lock:
            slot = self.slots.pop(key, None)
        if slot is not None:
            with slot.cond:
                slot.error = slot.error or WriterLostError(f"chunk run {key} was aborted")
                slot.cond.notify_all()  # calls waiting for this run's earlier results give up now
                slot.writer.abort()

    def abort_job(self, prefix: str) -> int:
        """Drop every chunk run whose key starts with `prefix` (a job that failed)."""
        with self._lock:
            keys = [k for k in self.slots if k.startswith(prefix)]
        for k in keys:
            self.abort(k)
        return len(keys)

    # -- internals ----------------------------------------------------------------------------

    def _priority(self, slot: _Slot) -> Any:
        """For a chunk run written at idle priority: moves the calling thread (calls run on
        several threads) to idle priority, once per thread, and returns the context in which
        its PNG encoding threads are idle too; ffmpeg encoders started here inherit it."""
        from vdp.io import encode_in_idle_time

        from vdp.idle import idle_once_per_thread

        return encode_in_idle_time() if slot.idle and idle_once_per_thread() else nullcontext()

    def _slot(self, key: str) -> _Slot:
        with self._lock:
            slot = self.slots.get(key)
        if slot is None:
            raise WriterLostError(f"the writer on node {self.where['node_id']} (pid {self.where['pid']}) "
                                  f"holds no chunk run {key}")
        return slot

    @staticmethod
    def _check(slot: _Slot) -> None:
        if slot.error is not None:
            raise WriterLostError(f"an earlier write of this chunk failed: {slot.error}")

    def _wait(self, key: str, timeout_s: float, ready: Any) -> _Slot:
        slot = self._slot(key)
        with slot.cond:
            if not slot.cond.wait_for(lambda: slot.error is not None or ready(slot), timeout=timeout_s):
                raise JobTimeoutError(f"chunk run {key}: waited {timeout_s:.0f} s for its earlier results")
            self._check(slot)
        return slot


def writer_on(node_id: str, idle_s: float | None = None) -> Any:
    """The `WriterActor` of `node_id`: the one already there, or a new one (kept for later jobs,
    like the stage actors, until `idle_s` idle seconds pass or ``vdp actors release``)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from vdp.engine.cluster import NAMESPACE
    from vdp.engine.placement import WRITER_PREFIX

    return WriterActor.options(name=f"{WRITER_PREFIX}{node_id[:12]}", namespace=NAMESPACE, get_if_exists=True,
                               lifetime="detached",
                               scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)
                               ).remote(idle_s)
