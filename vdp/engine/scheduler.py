"""ChunkScheduler: runs a job's chunks concurrently on the stages' replicas, surviving actor deaths.

The loop only decides what happens next; its parts live beside it:

- `vdp.engine.replica_pool`: which replica of each stage takes a starting chunk (the least
  loaded available one; up to ``max(replicas per stage)`` chunks run at once), and which are
  out after a fault until they answer a probe.
- `vdp.engine.chunk_run`: one chunk run, the Ray transport of the stage-chain protocol
  (`vdp.engine.chain`: segments at scene cuts, flush order, reports, progress).
- `vdp.engine.budget`: admission. Each run has at most ``max_in_flight`` batches in flight,
  and all runs together stay within an object-store budget (a batch is admitted only while the
  estimated bytes of everything in flight stay under it; one batch is always admitted so the
  job progresses). Results are taken out of the object store as soon as they are ready; a slow
  writer stops submission, not collection.
- `vdp.engine.worker_decode`: with a decode request, a chunk's frames are decoded by its
  first stage's actor (tickets go out, no frames); a replica that cannot read the input gets
  frames decoded here and shipped, with a warning.
- `vdp.engine.faults`: a run that lost an actor is dropped (its unmerged results deleted, its
  streams closed) and its chunk goes back to the front of the queue; a chunk that fails
  ``max_attempts`` times fails the job.
"""
from __future__ import annotations

import threading
import time
from dataclasses import replace
from collections import deque
from typing import Any, Callable, Iterator

import ray

from vdp.engine.assembly import Assembler
from vdp.engine.budget import CostModel, ObjectStoreBudget
from vdp.engine.chain import ChainReports
from vdp.engine.chunk_run import ChunkLost, ChunkRun, RunContext, TicketSource, harvest
from vdp.engine.chunks import Chunk
from vdp.engine.faults import DroppedRefs, RetryPolicy
from vdp.engine.ledger import Ledger
from vdp.engine.placement import Replica
from vdp.engine.plan import StagePlan
from vdp.engine.prefetch import Prefetcher
from vdp.engine.progress import ProgressTracker
from vdp.engine.ray_errors import get_report
from vdp.engine.replica_pool import ReplicaPool
from vdp.engine.worker_decode import DecodeRequest
from vdp.errors import JobCancelledError, JobTimeoutError
from vdp.stages.base import StageReport
from vdp.types import FrameBatch, VideoInfo

SourceFactory = Callable[[Chunk], Iterator[FrameBatch]]

#: Longest the loop sleeps in `ray.wait` when it submitted nothing and the actors decode (it wakes
#: as soon as a result is ready; the bound only spaces out idle wake-ups, which cost driver CPU).
IDLE_WAIT_S = 0.2
#: Progress of the stages' calls is counted at least this often, and whenever a result comes.
HARVEST_EVERY_S = 0.25


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
        self.plans = plans
        self.pool = ReplicaPool(plans, replicas)
        self.ledger = ledger
        self.max_in_flight = max_in_flight
        self.batch_timeout_s = batch_timeout_s
        self.budget = ObjectStoreBudget(budget_bytes)
        self.costs = CostModel(len(plans))
        self.faults = RetryPolicy(ledger, max_attempts)
        self.prefetch = prefetch
        #: Per finished chunk run: chunk, attempt, actors, seconds.
        self.chunk_log: list[dict[str, Any]] = []
        #: Most batches in flight at once, over all runs.
        self.peak_in_flight = 0
        #: Engine warnings for the job report (replicas that could not read the input).
        self.warnings: list[str] = []
        self._readable: dict[tuple[str, Any], str] = {}
        self._harvested = 0.0

    @property
    def retries(self) -> list[dict[str, Any]]:
        """Chunk runs lost to actor faults: chunk, attempt, reason."""
        return self.faults.retries

    def run(self, todo: list[Chunk], attempts: dict[int, int], assembler: Assembler,
            open_source: SourceFactory, info: VideoInfo, tracker: ProgressTracker | None = None,
            cancel: threading.Event | None = None, decode: DecodeRequest | None = None,
            why_driver: str = "", keep_frames: bool = True,
            keep_results: bool = True) -> dict[str, StageReport]:
        """Run `todo` (in this order of priority) and feed their results to `assembler`.

        Args:
            todo: Chunks to run.
            attempts: Runs each chunk had so far (updated in place).
            assembler: Takes the results.
            open_source: Decoded batches of a chunk's run range, in order.
            info: The source's metadata (for the stages' `init_state`).
            tracker: Per-stage progress.
            cancel: When set, the run stops and raises `JobCancelledError`.
            decode: The input for decoding on the first stage's replicas (its range is set per
                chunk); None: every chunk is decoded here (`open_source`) and shipped.
            why_driver: Why `decode` is None (recorded per chunk).
            keep_frames: Results come back with their RGB frames (else the last stage drops them).
            keep_results: Results come back at all (else the last stage drops them whole and
                only its facts return: a job without outputs).

        Returns:
            Each stage's report.
        """
        ctx = RunContext([p.name for p in self.plans], info, self.budget, self.costs,
                         self.max_in_flight, self.batch_timeout_s, tracker, keep_frames=keep_frames,
                         keep_results=keep_results)
        queue: deque[Chunk] = deque(todo)
        active: list[ChunkRun] = []
        dropped = DroppedRefs()
        try:
            while queue or active:
                if cancel is not None and cancel.is_set():
                    raise JobCancelledError("job cancelled")
                self.pool.check_probes()
                while queue and len(active) < self.pool.concurrency:
                    reps = self.pool.take()
                    if reps is None:
                        break
                    active.append(self._start(ctx, queue.popleft(), reps, attempts, assembler, open_source,
                                              decode, why_driver))
                if not active:
                    self.pool.wait_probes(0.1)
                    continue
                fed = any([run.feed() for run in active])
                self.peak_in_flight = max(self.peak_in_flight, sum(len(r.items) for r in active))
                # frames decoded here may become ready at any time: wake up often for them
                idle = IDLE_WAIT_S if all(isinstance(r.source, TicketSource) for r in active) else 0.05
                for run, lost in self._collect(active, assembler, wait_s=0.0 if fed else idle):
                    active.remove(run)
                    dropped.add(run.drop())
                    self.pool.release(run.replicas, finished=False)
                    assembler.abandon(run.results)
                    self.faults.lost(run.chunk, run.attempt, lost)
                    queue.appendleft(run.chunk)
                for run in [r for r in active if r.done]:
                    active.remove(run)
                    self._finish(run, assembler)
                self._check_timeouts(active)
        finally:
            for run in active:
                run.source.stop()
                run.close_all()
            dropped.read()
        reports = ChainReports(ctx.names)
        for name, ref in ctx.closing:
            reports.gather(name, lambda r=ref: get_report(r))
        return reports.reports

    def _start(self, ctx: RunContext, chunk: Chunk, reps: list[Replica], attempts: dict[int, int],
               assembler: Assembler, open_source: SourceFactory, decode: DecodeRequest | None,
               why_driver: str) -> ChunkRun:
        attempt = attempts[chunk.index] = attempts.get(chunk.index, 0) + 1
        self.ledger.append("start", chunk=chunk.index, attempt=attempt,
                           actors={r.stage: r.name for r in reps})
        results = assembler.begin(chunk, attempt, reps[-1].info.get("node_id"))
        if decode is not None:
            why_driver = self.unreadable(reps[0], decode)
            if not why_driver:
                request = replace(decode, start=chunk.run_start, stop=chunk.stop)
                return ChunkRun(ctx, chunk, attempt, reps, results, TicketSource(request), request)
        source = Prefetcher(lambda c=chunk: open_source(c), depth=self.prefetch,
                            name=f"vdp-decode-c{chunk.index}")
        return ChunkRun(ctx, chunk, attempt, reps, results, source, why_driver=why_driver)

    def unreadable(self, rep: Replica, decode: DecodeRequest) -> str:
        """Why `rep` cannot decode the input itself ("" when it can); asked once per process,
        each refusal a warning."""
        key = (rep.name, rep.info.get("pid"))
        if key not in self._readable:
            try:
                answer = ray.get(rep.handle.can_read.remote(decode.path, decode.size),
                                 timeout=self.batch_timeout_s)
                why = answer["reason"]
                where = f"node {answer['node_id']}, pid {answer['pid']}"
            except Exception as exc:  # noqa: BLE001 - an actor restarting: ship frames this time
                why, where = f"could not ask ({type(exc).__name__})", "unknown node"
                key = (rep.name, None)
            if why:
                self.warnings.append(f"replica {rep.name} ({where}) cannot read the input ({why}): "
                                     f"its chunks' frames are decoded on the driver and shipped "
                                     f"(put inputs on storage every node reads at the same path)")
            self._readable[key] = why
        return self._readable[key]

    def _collect(self, active: list[ChunkRun], assembler: Assembler,
                 wait_s: float) -> list[tuple[ChunkRun, str]]:
        """Take every ready head result to the assembler; returns the runs that were lost."""
        heads = {run.items[0].result: run for run in active if run.items}
        if not heads:
            waiting = [r for r in active if r.pending is None and not r.source.exhausted]
            if waiting and wait_s:
                waiting[0].source.wait(wait_s)
            return []
        refs = list(heads)
        ready, rest = ray.wait(refs, num_returns=1, timeout=wait_s)
        if ready and rest:
            ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        now = time.monotonic()
        if ready or now - self._harvested > HARVEST_EVERY_S:  # progress, without spinning on it
            harvest(active)
            self._harvested = now
        lost = []
        for ref in ready:
            run = heads[ref]
            try:
                out = run.complete_head()
            except ChunkLost as exc:
                lost.append((run, str(exc)))
                continue
            if out is not None:
                assembler.add(run.results, out)
        return lost

    def _finish(self, run: ChunkRun, assembler: Assembler) -> None:
        self.pool.release(run.replicas, finished=True)
        assembler.complete(run.results)
        self.chunk_log.append({"chunk": run.chunk.index, "attempt": run.attempt,
                               "actors": {r.stage: r.name for r in run.replicas},
                               "decode": run.decoded_on,
                               "seconds": round(time.monotonic() - run.t0, 3)})

    def _check_timeouts(self, active: list[ChunkRun]) -> None:
        now = time.monotonic()
        for run in active:
            if run.items and now - run.head_since > self.batch_timeout_s:
                raise JobTimeoutError(f"chunk {run.chunk.index}: a batch took longer than "
                                      f"{self.batch_timeout_s:.0f} s to pass through "
                                      f"{[p.name for p in self.plans]}")
