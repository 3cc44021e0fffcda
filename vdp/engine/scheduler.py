"""ChunkScheduler: runs a job's chunks concurrently on the stages' replicas, surviving actor deaths.

Dynamic assignment
    Chunks wait in a queue. Up to ``max(replicas per stage)`` run at once; a starting chunk
    takes, for every stage, the replica running the fewest chunks, so a replica that finishes
    early (a fast GPU) pulls the next chunk and a slow one ends up with fewer.

One chunk run
    Its frames are decoded in a background thread (`Prefetcher`, seeking to the chunk's first
    frame) and travel as object refs from one stage's actor to the next under a stream id of
    their own; results come back in order and go to the `Assembler` (merge, spill, ledger).
    Batches that start a new segment (scene cut) flush the stages and open a new stream.

Backpressure
    Each run has at most ``max_in_flight`` batches in flight, and all runs together stay within
    an object-store budget: a batch is admitted only while the estimated bytes of everything in
    flight (input frames plus each stage's output, estimated from the results seen so far) stay
    under it; one batch is always admitted so the job progresses. Results are taken out of the
    object store as soon as they are ready, and a slow writer stops submission, not collection.

Faults
    When a model actor dies (its process killed, its node lost), every run that used it fails
    at its next result; the run is dropped (its unmerged results deleted, its other streams
    closed) and its chunk goes back to the front of the queue, to run again from its first frame
    on the restarted actor or another replica. The replicas of a lost run get no new chunk until
    they answer an `info` probe (Ray refuses calls while an actor restarts); a replica Ray gave
    up on is left out, and a stage with no replica left fails the job. The merge ignores frames it already has, and the
    stages are deterministic, so the output is the same as without the fault. A chunk that
    fails ``max_attempts`` times fails the job.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import ray
from ray.exceptions import (ActorDiedError, ActorUnavailableError, GetTimeoutError,
                            ObjectLostError, OwnerDiedError, RayActorError, RayTaskError)

from vdp.engine.actor import StreamLostError
from vdp.engine.assembly import Assembler, ChunkResults
from vdp.engine.budget import ObjectStoreBudget, batch_nbytes
from vdp.engine.chunks import Chunk
from vdp.engine.ledger import Ledger
from vdp.engine.placement import Replica
from vdp.engine.plan import StagePlan
from vdp.engine.prefetch import Prefetcher
from vdp.engine.progress import ProgressTracker
from vdp.errors import JobCancelledError, JobTimeoutError, StageError, VdpError
from vdp.stages.base import StageReport
from vdp.types import FrameBatch, VideoInfo

SourceFactory = Callable[[Chunk], Iterator[FrameBatch]]


@dataclass
class _Item:
    result: Any
    metas: list[tuple[str, Any]]
    cost: int


@dataclass
class _Run:
    chunk: Chunk
    attempt: int
    replicas: list[Replica]
    results: ChunkResults
    source: Prefetcher
    sid: str
    sids: list[str] = field(default_factory=list)
    opens: list[Any] = field(default_factory=list)
    items: deque[_Item] = field(default_factory=deque)
    pending: FrameBatch | None = None
    started: bool = False
    flushed: bool = False
    head_since: float = field(default_factory=time.monotonic)
    last_in_bytes: int = 0
    t0: float = field(default_factory=time.monotonic)

    @property
    def done(self) -> bool:
        return self.flushed and not self.items


class _Lost(Exception):
    """A chunk run lost its stream (actor died or restarted); carries the reason."""


class ChunkScheduler:
    """Runs chunks on replicas; see the module docstring.

    Args:
        plans: Stages in pipeline order.
        replicas: Live replicas per stage name (`acquire_replicas`).
        ledger: Receives ``start`` and ``retry`` events.
        max_in_flight: Most batches in flight per chunk run.
        batch_timeout_s: Longest the oldest batch of a run may take.
        budget_bytes: Object-store budget for everything in flight.
        max_attempts: Runs of one chunk (across drivers) before the job fails.
        prefetch: Batches decoded ahead per running chunk.
    """

    def __init__(self, plans: list[StagePlan], replicas: dict[str, list[Replica]], *,
                 ledger: Ledger, max_in_flight: int = 4, batch_timeout_s: float = 600.0,
                 budget_bytes: int = 1 << 30, max_attempts: int = 3, prefetch: int = 2) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        missing = [p.name for p in plans if not replicas.get(p.name)]
        if missing:
            raise ValueError(f"no replicas for stages {missing}")
        self.plans = plans
        self.replicas = replicas
        self.ledger = ledger
        self.max_in_flight = max_in_flight
        self.batch_timeout_s = batch_timeout_s
        self.budget = ObjectStoreBudget(budget_bytes)
        self.max_attempts = max_attempts
        self.prefetch = prefetch
        self.concurrency = max(len(replicas[p.name]) for p in plans)
        #: Per finished chunk run: chunk, attempt, actors, seconds.
        self.chunk_log: list[dict[str, Any]] = []
        #: Chunk runs lost to actor faults: chunk, attempt, reason.
        self.retries: list[dict[str, Any]] = []
        #: Most batches in flight at once, over all runs.
        self.peak_in_flight = 0
        self._out_ratio = 2.0  # result bytes per input byte, per stage (grows to what is seen)
        self._closing: list[tuple[str, Any]] = []
        self._dropped: list[Any] = []  # refs of lost runs (their errors are read, not logged)
        self._job_id = ray.get_runtime_context().get_job_id()  # stream ids start with it

    def run(self, todo: list[Chunk], attempts: dict[int, int], assembler: Assembler,
            open_source: SourceFactory, info: VideoInfo, tracker: ProgressTracker | None = None,
            cancel: threading.Event | None = None) -> dict[str, StageReport]:
        """Run `todo` (in this order of priority) and feed their results to `assembler`.

        Args:
            todo: Chunks to run.
            attempts: Runs each chunk had so far (updated in place).
            assembler: Takes the results.
            open_source: Decoded batches of a chunk's run range, in order.
            info: The source's metadata (for the stages' `init_state`).
            tracker: Per-stage progress.
            cancel: When set, the run stops and raises `JobCancelledError`.

        Returns:
            Each stage's report.
        """
        self._assembler, self._tracker, self._info = assembler, tracker, info
        self._open_source, self._attempts = open_source, attempts
        queue: deque[Chunk] = deque(todo)
        active: list[_Run] = []
        try:
            while queue or active:
                if cancel is not None and cancel.is_set():
                    raise JobCancelledError("job cancelled")
                self._check_probes()
                while queue and len(active) < self.concurrency:
                    reps = self._pick()
                    if reps is None:
                        break
                    active.append(self._start(queue.popleft(), reps))
                if not active:
                    self._wait_probes(0.1)
                    continue
                fed = False
                for run in active:
                    fed = self._feed(run) or fed
                self.peak_in_flight = max(self.peak_in_flight, sum(len(r.items) for r in active))
                self._collect(active, queue, wait_s=0.0 if fed else 0.05)
                for run in [r for r in active if r.done]:
                    self._finish(run)
                    active.remove(run)
                self._check_timeouts(active)
        finally:
            for run in active:
                run.source.stop()
                self._close_streams(run)
            self._read_dropped()
        return self._reports()

    # -- starting and feeding ---------------------------------------------------------------

    def _pick(self) -> list[Replica] | None:
        """Per stage, the available replica running the fewest chunks (None: wait for one)."""
        reps = []
        for p in self.plans:
            live = [r for r in self.replicas[p.name] if not r.dead]
            if not live:
                raise StageError(f"stage {p.name!r}: every replica died and Ray stopped restarting them")
            free = [r for r in live if r.available]
            if not free:
                return None
            reps.append(min(free, key=lambda r: (r.active, r.index)))
        return reps

    def _suspect(self, rep: Replica) -> None:
        if rep.probe is None and not rep.dead:
            rep.probe = rep.handle.info.remote()

    def _check_probes(self) -> None:
        """Replicas whose probe answered are available again (restarted: new pid)."""
        for rep in (r for rs in self.replicas.values() for r in rs if r.probe is not None):
            ready, _ = ray.wait([rep.probe], timeout=0)
            if not ready:
                continue
            try:
                rep.info = ray.get(rep.probe)
                rep.probe = None
            except ActorDiedError:
                rep.dead, rep.probe = True, None
            except (ActorUnavailableError, RayActorError, RayTaskError):
                rep.probe = None  # still restarting: ask again
                self._suspect(rep)

    def _wait_probes(self, timeout_s: float) -> None:
        probes = [r.probe for rs in self.replicas.values() for r in rs if r.probe is not None]
        if probes:
            ray.wait(probes, num_returns=1, timeout=timeout_s)
        else:
            time.sleep(timeout_s)

    def _read_dropped(self) -> None:
        """Read the errors of dropped results that are in, so Ray does not report them as unhandled."""
        if self._dropped:
            ready, _ = ray.wait(self._dropped, num_returns=len(self._dropped), timeout=0)
            for ref in ready:
                try:
                    ray.get(ref)
                except Exception:  # noqa: BLE001 - expected: these runs were lost
                    pass
        self._dropped = []

    def _start(self, chunk: Chunk, reps: list[Replica]) -> _Run:
        attempt = self._attempts.get(chunk.index, 0) + 1
        self._attempts[chunk.index] = attempt
        for r in reps:
            r.active += 1
        self.ledger.append("start", chunk=chunk.index, attempt=attempt,
                           actors={r.stage: r.name for r in reps})
        source = Prefetcher(lambda c=chunk: self._open_source(c), depth=self.prefetch,
                            name=f"vdp-decode-c{chunk.index}")
        run = _Run(chunk, attempt, reps, self._assembler.begin(chunk, attempt), source, sid="")
        self._open_stream(run)
        return run

    def _open_stream(self, run: _Run) -> None:
        run.sid = f"{self._job_id}:{uuid.uuid4().hex[:12]}:c{run.chunk.index}"
        run.sids.append(run.sid)
        run.opens.extend(r.handle.open.remote(run.sid, self._info) for r in run.replicas)

    def _feed(self, run: _Run) -> bool:
        """Submit what is decoded, within the run's and the budget's limits (never blocks)."""
        fed = False
        while len(run.items) < self.max_in_flight:
            if run.pending is not None or not run.source.exhausted:
                batch = run.pending if run.pending is not None else run.source.poll()
                if batch is None:
                    if run.source.exhausted:
                        continue
                    break
                cost = self._cost(batch_nbytes(batch))
                new_segment = batch.starts_segment and run.started
                if not self.budget.fits(cost + (self._flush_cost(run) if new_segment else 0)):
                    run.pending = batch
                    break
                run.pending = None
                if new_segment:  # new shot: flush, restart state
                    self._flush_chain(run)
                    self._close_streams(run, current=True)
                    self._open_stream(run)
                run.started = True
                run.last_in_bytes = batch_nbytes(batch)
                if self._tracker:
                    self._tracker.add("decode", len(batch))
                self._submit(run, ray.put(batch), 0, cost)
                fed = True
            elif not run.flushed:
                if not self.budget.fits(self._flush_cost(run)):
                    break
                self._flush_chain(run)
                run.flushed = True
                fed = True
            else:
                break
        return fed

    def _submit(self, run: _Run, ref: Any, first_stage: int, cost: int,
                metas: list[tuple[str, Any]] | None = None) -> None:
        metas = list(metas or [])
        for plan, rep in zip(self.plans[first_stage:], run.replicas[first_stage:]):
            ref, meta = rep.handle.process.remote(run.sid, ref)
            metas.append((plan.name, meta))
        if not run.items:
            run.head_since = time.monotonic()
        self.budget.take(cost)
        run.items.append(_Item(ref, metas, cost))

    def _flush_chain(self, run: _Run) -> None:
        """Flush each stage in turn; what stage i flushes still goes through stages i+1..."""
        for i, (plan, rep) in enumerate(zip(self.plans, run.replicas)):
            out, meta = rep.handle.flush.remote(run.sid)
            self._submit(run, out, i + 1, self._cost(run.last_in_bytes, len(self.plans) - i, False),
                         [(plan.name, meta)])

    def _cost(self, in_bytes: int, stages: int | None = None, with_input: bool = True) -> int:
        """Estimated object-store bytes of one batch: its input (if put) and each stage's output."""
        n = len(self.plans) if stages is None else stages
        return int(in_bytes * ((1 if with_input else 0) + n * self._out_ratio))

    def _flush_cost(self, run: _Run) -> int:
        return sum(self._cost(run.last_in_bytes, len(self.plans) - i, False) for i in range(len(self.plans)))

    # -- collecting -------------------------------------------------------------------------

    def _collect(self, active: list[_Run], queue: deque[Chunk], wait_s: float) -> None:
        heads = {run.items[0].result: run for run in active if run.items}
        if not heads:
            waiting = [r for r in active if r.pending is None and not r.source.exhausted]
            if waiting and wait_s:
                waiting[0].source.wait(wait_s)
            return
        refs = list(heads)
        ready, rest = ray.wait(refs, num_returns=1, timeout=wait_s)
        if ready and rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        self._harvest(active)
        for ref in ready:
            run = heads[ref]
            try:
                self._complete_head(run)
            except _Lost as lost:
                self._lose(run, str(lost), active, queue)

    def _complete_head(self, run: _Run) -> None:
        item = run.items.popleft()
        run.head_since = time.monotonic()
        self.budget.give(item.cost)
        try:
            out = ray.get(item.result, timeout=self.batch_timeout_s)
        except GetTimeoutError:
            raise JobTimeoutError(f"chunk {run.chunk.index}: a batch took longer than "
                                  f"{self.batch_timeout_s:.0f} s") from None
        except Exception as exc:  # noqa: BLE001 - classified below
            raise _Lost(self._classify(exc, run)) from None
        self._count(item.metas)  # the ones `_harvest` has not seen finish yet
        item.metas = []
        if out is None or len(out) == 0:
            return
        in_bytes = max(1, run.last_in_bytes)
        self._out_ratio = max(self._out_ratio, batch_nbytes(out) / in_bytes)
        self._assembler.add(run.results, out)

    def _classify(self, exc: BaseException, run: _Run) -> str:
        """Reason to re-run the chunk, or raise the error that fails the job."""
        cause = exc.cause if isinstance(exc, RayTaskError) and isinstance(exc.cause, BaseException) else exc
        if isinstance(cause, StreamLostError):
            self._raise_open_error(run)
            return f"a model actor restarted ({cause})"
        if isinstance(cause, (RayActorError, ObjectLostError, OwnerDiedError)):
            return f"a model actor died ({type(cause).__name__})"
        if isinstance(cause, VdpError):
            raise cause
        raise StageError(f"chunk {run.chunk.index} failed in a Ray actor: {cause}") from None

    def _raise_open_error(self, run: _Run) -> None:
        """A stream that was never opened: surface the stage's own `init_state` error."""
        ready, _ = ray.wait(run.opens, num_returns=len(run.opens), timeout=0)
        for ref in ready:
            try:
                ray.get(ref)
            except RayTaskError as exc:
                if isinstance(exc.cause, VdpError):
                    raise exc.cause from None
            except RayActorError:
                continue

    def _harvest(self, active: list[_Run]) -> None:
        """Count the frames of every finished stage call (progress), without blocking."""
        refs = [m for run in active for item in run.items for _, m in item.metas]
        if not refs:
            return
        done, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        done_set = set(done)
        for run in active:
            for item in run.items:
                keep = []
                for name, ref in item.metas:
                    if ref not in done_set:
                        keep.append((name, ref))
                        continue
                    self._count([(name, ref)])
                item.metas = keep

    def _count(self, metas: list[tuple[str, Any]]) -> None:
        """Add finished stage calls to the progress (each call's meta is counted once)."""
        for name, ref in metas:
            try:
                meta = ray.get(ref, timeout=self.batch_timeout_s)
            except Exception:  # noqa: BLE001 - the result ref reports the failure
                continue
            if self._tracker:
                self._tracker.add(name, meta["frames"], meta["seconds"])

    # -- endings ----------------------------------------------------------------------------

    def _finish(self, run: _Run) -> None:
        self._close_streams(run)
        for r in run.replicas:
            r.active -= 1
            r.chunks += 1
        self._assembler.complete(run.results)
        self.chunk_log.append({"chunk": run.chunk.index, "attempt": run.attempt,
                               "actors": {r.stage: r.name for r in run.replicas},
                               "seconds": round(time.monotonic() - run.t0, 3)})

    def _lose(self, run: _Run, reason: str, active: list[_Run], queue: deque[Chunk]) -> None:
        for item in run.items:
            self.budget.give(item.cost)
            self._dropped.append(item.result)
            self._dropped.extend(m for _, m in item.metas)
        run.items.clear()
        run.source.stop()
        self._close_streams(run)
        for r in run.replicas:
            r.active -= 1
            self._suspect(r)
        self._assembler.abandon(run.results)
        active.remove(run)
        self.retries.append({"chunk": run.chunk.index, "attempt": run.attempt, "reason": reason})
        if run.attempt >= self.max_attempts:
            c = run.chunk
            raise StageError(f"chunk {c.index} (frames {c.run_start}-{c.stop - 1}) failed "
                             f"{run.attempt} times, last: {reason}")
        self.ledger.append("retry", chunk=run.chunk.index, attempt=run.attempt, reason=reason)
        queue.appendleft(run.chunk)

    def _close_streams(self, run: _Run, current: bool = False) -> None:
        sids = [run.sid] if current else run.sids
        for sid in sids:
            for plan, r in zip(self.plans, run.replicas):
                self._closing.append((plan.name, r.handle.close.remote(sid)))
        if not current:
            run.sids = []

    def _check_timeouts(self, active: list[_Run]) -> None:
        now = time.monotonic()
        for run in active:
            if run.items and now - run.head_since > self.batch_timeout_s:
                raise JobTimeoutError(f"chunk {run.chunk.index}: a batch took longer than "
                                      f"{self.batch_timeout_s:.0f} s to pass through "
                                      f"{[p.name for p in self.plans]}")

    def _reports(self) -> dict[str, StageReport]:
        reports = {p.name: StageReport() for p in self.plans}
        for name, ref in self._closing:
            try:
                reports[name].merge(ray.get(ref, timeout=60))
            except (RayActorError, RayTaskError, GetTimeoutError, ObjectLostError):
                continue  # a dead actor's report died with it
        self._closing = []
        return reports

