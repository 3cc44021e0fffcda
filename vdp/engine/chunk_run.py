"""One chunk run on Ray: the stage-chain protocol's Ray transport, with its in-flight batches.

The chunk's frames are decoded by the first stage's actor from tickets (`vdp.engine.worker_decode`),
or, where that actor cannot read the input, in a background thread here (`Prefetcher`) and put
in the object store; results travel as object refs from one stage's actor to the next under a
stream id of their own; `vdp.engine.chain.Chain`
decides the calls (segments, flush order, reports, progress), this module makes them and keeps
what they return in order until the results are collected.
"""
from __future__ import annotations

import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import GetTimeoutError

from vdp.engine.assembly import ChunkResults
from vdp.engine.budget import CostModel, ObjectStoreBudget, batch_nbytes
from vdp.engine.chain import Chain
from vdp.engine.chunks import Chunk
from vdp.engine.placement import Replica
from vdp.engine.prefetch import Prefetcher
from vdp.engine.progress import ProgressTracker
from vdp.engine.worker_decode import DecodeRequest, DecodeTicket, tickets
from vdp.errors import JobTimeoutError
from vdp.types import FrameBatch, VideoInfo


class ChunkLost(Exception):
    """A chunk run lost its stream (an actor died or restarted); carries the reason."""


@dataclass
class RunContext:
    """What every chunk run of one job shares."""

    names: list[str]
    info: VideoInfo
    budget: ObjectStoreBudget
    costs: CostModel
    max_in_flight: int
    batch_timeout_s: float
    tracker: ProgressTracker | None = None
    #: Results come back with their RGB frames (some output reads them).
    keep_frames: bool = True
    #: Results come back at all (False: the job has no outputs; only the calls' facts return).
    keep_results: bool = True
    #: (stage name, ref of its ``close`` call) of every closed stream, for the reports.
    closing: list[tuple[str, Any]] = field(default_factory=list)
    job_id: str = field(default_factory=lambda: ray.get_runtime_context().get_job_id())


@dataclass
class InFlight:
    """One submitted batch: the last stage's result ref, each call's progress ref, its cost."""

    result: Any
    metas: list[tuple[str, Any]]
    cost: int


class TicketSource:
    """The batches of a run whose first stage decodes them: tickets, ready at once (the
    `Prefetcher` interface `ChunkRun` and the scheduler use)."""

    def __init__(self, request: DecodeRequest) -> None:
        self._tickets = deque(tickets(request))
        self.exhausted = False
        self.last_seconds = 0.0
        self.ready = True

    def poll(self) -> DecodeTicket | None:
        if not self._tickets:
            self.exhausted = True
            return None
        return self._tickets.popleft()

    def wait(self, timeout_s: float) -> None:
        pass

    def stop(self) -> None:
        self._tickets.clear()


class ChunkRun:
    """A chunk running on one replica per stage (a `ChainTransport`).

    With `decode`, the first stage's actor decodes the frames (`source` is a `TicketSource`);
    `decoded_on` then says where (node, pid, device), else that the driver shipped them.
    """

    def __init__(self, ctx: RunContext, chunk: Chunk, attempt: int, replicas: list[Replica],
                 results: ChunkResults, source: Prefetcher | TicketSource,
                 decode: DecodeRequest | None = None, why_driver: str = "") -> None:
        self.ctx, self.chunk, self.attempt = ctx, chunk, attempt
        self.replicas, self.results, self.source = replicas, results, source
        self.decode = decode
        self.decoded_on: dict[str, Any] = ({"on": "worker"} if decode is not None
                                           else {"on": "driver", "reason": why_driver})
        self.sid = ""
        self.open_sids: list[str] = []
        self.opens: list[Any] = []  # refs of every `open` call (their errors explain a lost stream)
        self.items: deque[InFlight] = deque()
        self.pending: tuple[FrameBatch, float] | None = None  # decoded, not admitted yet
        self.head_since = self.t0 = time.monotonic()
        self.last_in_bytes = 0
        self.chain = Chain(ctx.names, self, ctx.tracker)
        self.chain.begin()

    @property
    def done(self) -> bool:
        return self.chain.finished and not self.items

    # -- the transport ----------------------------------------------------------------------

    def open(self) -> None:
        self.sid = f"{self.ctx.job_id}:{uuid.uuid4().hex[:12]}:c{self.chunk.index}"  # see StageActor.prune
        self.open_sids.append(self.sid)
        last = len(self.replicas) - 1
        self.opens.extend(r.handle.open.remote(self.sid, self.ctx.info, self.decode if i == 0 else None,
                                               i == last and not self.ctx.keep_frames,
                                               i == last and not self.ctx.keep_results)
                          for i, r in enumerate(self.replicas))

    def process(self, batch: FrameBatch | DecodeTicket) -> None:
        self.last_in_bytes = self.in_bytes(batch)
        if isinstance(batch, DecodeTicket):
            self._submit(batch, 0, self.ctx.costs.batch(self.last_in_bytes, with_input=False))
        else:
            self._submit(ray.put(batch), 0, self.ctx.costs.batch(self.last_in_bytes))

    def in_bytes(self, batch: FrameBatch | DecodeTicket) -> int:
        """Bytes of a batch's frames (a ticket's: as they will be once decoded)."""
        if isinstance(batch, DecodeTicket):
            return len(batch) * 3 * self.ctx.info.width * self.ctx.info.height
        return batch_nbytes(batch)

    def flush(self, stage: int) -> None:
        out, meta = self.replicas[stage].handle.flush.remote(self.sid)
        self._submit(out, stage + 1, self.ctx.costs.flush_from(stage, self.last_in_bytes),
                     [(self.ctx.names[stage], meta)])

    def close(self) -> None:
        self._close(self.sid)

    def close_all(self) -> None:
        """Close every stream still open (a run that stops early)."""
        for sid in list(self.open_sids):
            self._close(sid)

    # -- admission and collection -------------------------------------------------------------

    def feed(self) -> bool:
        """Submit what is decoded, within the run's and the budget's limits (never blocks);
        whether anything was submitted."""
        ctx, fed = self.ctx, False
        while len(self.items) < ctx.max_in_flight:
            if self.pending is None and not self.source.exhausted:
                batch = self.source.poll()
                if batch is None:
                    if self.source.exhausted:
                        continue
                    break
                self.pending = (batch, self.source.last_seconds)
            if self.pending is not None:
                batch, secs = self.pending
                cost = ctx.costs.batch(self.in_bytes(batch), with_input=not isinstance(batch, DecodeTicket))
                if self.chain.cuts_at(batch):
                    cost += ctx.costs.flush(self.last_in_bytes)
                if not ctx.budget.fits(cost):
                    break
                self.pending = None
                self.chain.push(batch, None if isinstance(batch, DecodeTicket) else secs)
            elif not self.chain.finished:
                if not ctx.budget.fits(ctx.costs.flush(self.last_in_bytes)):
                    break
                self.chain.finish()
            else:
                break
            fed = True
        return fed

    def complete_head(self) -> FrameBatch | dict | None:
        """Take the oldest batch's result (ready) out of the object store.

        Raises:
            ChunkLost: The stream was lost (the reason from `vdp.engine.faults.classify`).
            JobTimeoutError: The result did not come within the batch timeout.
            VdpError: A stage failed.
        """
        from vdp.engine.faults import classify

        item = self.items.popleft()
        self.head_since = time.monotonic()
        self.ctx.budget.give(item.cost)
        try:
            out = ray.get(item.result, timeout=self.ctx.batch_timeout_s)
        except GetTimeoutError:
            raise JobTimeoutError(f"chunk {self.chunk.index}: a batch took longer than "
                                  f"{self.ctx.batch_timeout_s:.0f} s") from None
        except Exception as exc:  # noqa: BLE001 - classified
            raise ChunkLost(classify(exc, self.chunk.index, self.opens)) from None
        count_metas(self, item.metas, self.ctx.batch_timeout_s)  # the ones `harvest` has not seen finish yet
        item.metas = []
        if isinstance(out, dict):  # what the chunk's writer says about the batch it took
            return out
        if out is None or len(out) == 0:
            return None
        self.ctx.costs.observe(out, self.last_in_bytes)
        return out

    def drop(self) -> list[Any]:
        """Give up the run: release its budget, stop decoding, close its streams; returns the
        refs still in flight (their errors are to be read, not logged)."""
        refs = []
        for item in self.items:
            self.ctx.budget.give(item.cost)
            refs.append(item.result)
            refs.extend(m for _, m in item.metas)
        self.items.clear()
        self.source.stop()
        self.close_all()
        return refs

    def _submit(self, ref: Any, first_stage: int, cost: int,
                metas: list[tuple[str, Any]] | None = None) -> None:
        metas = list(metas or [])
        for name, rep in zip(self.ctx.names[first_stage:], self.replicas[first_stage:]):
            ref, meta = rep.handle.process.remote(self.sid, ref)
            metas.append((name, meta))
        ref = self.results.route(ref)  # to the driver, or to the writer beside the last stage
        if not self.items:
            self.head_since = time.monotonic()
        self.ctx.budget.take(cost)
        self.items.append(InFlight(ref, metas, cost))

    def _close(self, sid: str) -> None:
        for name, r in zip(self.ctx.names, self.replicas):
            self.ctx.closing.append((name, r.handle.close.remote(sid)))
        self.open_sids.remove(sid)


def count_metas(run: ChunkRun, metas: list[tuple[str, Any]], timeout_s: float) -> None:
    """Add finished stage calls to the run's progress (each call's record is counted once),
    with the decoding the first stage did for them and where it ran."""
    for name, ref in metas:
        try:
            meta = ray.get(ref, timeout=timeout_s)
        except Exception:  # noqa: BLE001 - the result ref reports the failure
            continue
        decoded = meta.get("decode")
        if decoded is not None:
            run.chain.count("decode", decoded)
            run.decoded_on = decoded["where"]
        for member, record in (meta.get("stages") or {name: meta}).items():  # fused: per member
            run.chain.count(member, record)


def harvest(runs: list[ChunkRun]) -> None:
    """Count the frames of every finished stage call of `runs` (progress), without blocking."""
    refs = [m for run in runs for item in run.items for _, m in item.metas]
    if not refs:
        return
    done = set(ray.wait(refs, num_returns=len(refs), timeout=0)[0])
    for run in runs:
        for item in run.items:
            count_metas(run, [(n, m) for n, m in item.metas if m in done], run.ctx.batch_timeout_s)
            item.metas = [(n, m) for n, m in item.metas if m not in done]
