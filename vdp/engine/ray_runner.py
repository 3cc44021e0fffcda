"""RayRunner: the same stage chain as LocalRunner, one named Ray actor per stage, one stream.

Batches travel between actors through the object store (the driver passes object refs, never
the data, from one actor to the next); at most `max_in_flight` batches are in the pipeline at
once, so memory does not grow with video length; finished batches come back in frame order.

Jobs (`run_job`) use `vdp.engine.scheduler.ChunkScheduler` instead, which adds replicas, chunk
parallelism, actor-fault recovery and an object-store budget; this runner is the minimal
streaming path over any batch iterator (tests, benchmarks, embedding).
"""
from __future__ import annotations

import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from vdp.engine.actor import StageActor
from vdp.engine.cluster import NAMESPACE, ensure_ray
from vdp.engine.plan import StagePlan
from vdp.engine.progress import ProgressTracker
from vdp.errors import JobTimeoutError, StageError, VdpError
from vdp.stages.base import StageReport
from vdp.types import FrameBatch, VideoInfo

Sink = Callable[[FrameBatch], None]


@dataclass
class _InFlight:
    """One submitted batch: the final ref, plus each stage's small progress ref."""

    result: ray.ObjectRef
    metas: list[tuple[str, ray.ObjectRef]] = field(default_factory=list)


class RayRunner:
    """Runs stages as Ray actors with a bounded number of batches in flight.

    Args:
        plans: Stage recipes, in pipeline order.
        use_gpu: Give each actor `plan.num_gpus` GPUs (else CPU only).
        max_in_flight: Most batches submitted but not yet written.
        batch_timeout_s: Longest the oldest batch may take to come out of the chain.
        threads: torch CPU threads inside each actor.
    """

    def __init__(self, plans: list[StagePlan], *, use_gpu: bool = False, max_in_flight: int = 4,
                 batch_timeout_s: float = 600.0, threads: int | None = None) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        self.plans = plans
        self.use_gpu = use_gpu
        self.max_in_flight = max_in_flight
        self.batch_timeout_s = batch_timeout_s
        self.threads = threads
        self.actors: list = []
        #: Highest number of batches that were in flight at once during the last run.
        self.peak_in_flight = 0

    def setup(self) -> None:
        """Create (or reuse, by name) one actor per stage and wait until its model is loaded."""
        ensure_ray()
        self.actors = []
        for plan in self.plans:
            self.actors.append(StageActor.options(
                name=plan.actor_name(0), namespace=NAMESPACE, get_if_exists=True,
                num_gpus=plan.num_gpus if self.use_gpu else 0, num_cpus=0,
            ).remote(plan, self.threads))
        self._get([a.info.remote() for a in self.actors], "loading models")

    def run(self, source: Iterable[FrameBatch], info: VideoInfo, sink: Sink,
            tracker: ProgressTracker | None = None) -> dict[str, StageReport]:
        """Stream `source` through the actors; `sink` gets finished batches in frame order.

        Returns:
            Each stage's report, keyed by stage name.
        """
        if not self.actors:
            self.setup()
        pending: deque[_InFlight] = deque()
        closing: list[list[ray.ObjectRef]] = []
        self.peak_in_flight = 0
        sid = self._open(info)
        started = False
        try:
            for batch in source:
                if batch.starts_segment and started:  # new shot: flush, restart stage state
                    self._flush_chain(sid, pending, sink, tracker)
                    closing.append([a.close.remote(sid) for a in self.actors])
                    sid = self._open(info)
                started = True
                if tracker:
                    tracker.add("decode", len(batch))
                self._push(self._submit(sid, ray.put(batch), 0), pending, sink, tracker)
            self._flush_chain(sid, pending, sink, tracker)
            while pending:
                self._complete(pending.popleft(), sink, tracker, pending)
        finally:
            closing.append([a.close.remote(sid) for a in self.actors])
            reports = self._collect_reports(closing)
        return reports

    # -- internals --------------------------------------------------------------------------

    def _open(self, info: VideoInfo) -> str:
        sid = f"{ray.get_runtime_context().get_job_id()}:{uuid.uuid4().hex[:12]}"  # see StageActor.prune
        self._get([a.open.remote(sid, info) for a in self.actors], "opening stream")
        return sid

    def _submit(self, sid: str, ref: ray.ObjectRef, first_stage: int) -> _InFlight:
        item = _InFlight(ref)
        for plan, actor in zip(self.plans[first_stage:], self.actors[first_stage:]):
            ref, meta = actor.process.remote(sid, ref)
            item.metas.append((plan.name, meta))
        item.result = ref
        return item

    def _push(self, item: _InFlight, pending: deque[_InFlight], sink: Sink,
              tracker: ProgressTracker | None) -> None:
        """Queue a submitted batch, first waiting while the in-flight limit is reached."""
        pending.append(item)
        self.peak_in_flight = max(self.peak_in_flight, len(pending))
        while len(pending) >= self.max_in_flight:
            self._complete(pending.popleft(), sink, tracker, pending)

    def _flush_chain(self, sid: str, pending: deque[_InFlight], sink: Sink,
                     tracker: ProgressTracker | None) -> None:
        """Flush each stage in turn; what stage i flushes still goes through stages i+1..."""
        for i, actor in enumerate(self.actors):
            out_ref, meta_ref = actor.flush.remote(sid)
            item = self._submit(sid, out_ref, i + 1)
            item.metas.insert(0, (self.plans[i].name, meta_ref))
            self._push(item, pending, sink, tracker)

    def _complete(self, item: _InFlight, sink: Sink, tracker: ProgressTracker | None,
                  pending: deque[_InFlight]) -> None:
        """Wait for the oldest batch (reporting progress meanwhile), then write it."""
        deadline = time.monotonic() + self.batch_timeout_s
        while True:
            ready, _ = ray.wait([item.result], timeout=0.2)
            self._harvest(tracker, [item, *pending])
            if ready:
                break
            if time.monotonic() > deadline:
                raise JobTimeoutError(f"a batch took longer than {self.batch_timeout_s:.0f} s "
                                      f"to pass through {[p.name for p in self.plans]}")
        out = self._get(item.result, "processing")
        self._harvest(tracker, [item], block=True)  # its calls are all done; a meta may lag the result
        if out is not None and len(out):
            sink(out)

    def _harvest(self, tracker: ProgressTracker | None, items: list[_InFlight], block: bool = False) -> None:
        """Count frames of every stage call that has finished, without blocking (with `block`:
        of every call of `items`, waiting for their progress records)."""
        for item in items:
            refs = [m for _, m in item.metas]
            if not refs:
                continue
            done_set = set(refs) if block else set(ray.wait(refs, num_returns=len(refs), timeout=0)[0])
            keep = []
            for name, ref in item.metas:
                if ref in done_set:
                    meta = self._get(ref, "progress")
                    if tracker:
                        tracker.add(name, meta["frames"], meta["seconds"])
                else:
                    keep.append((name, ref))
            item.metas = keep

    def _collect_reports(self, closing: list[list[ray.ObjectRef]]) -> dict[str, StageReport]:
        reports = {p.name: StageReport() for p in self.plans}
        for refs in closing:
            for plan, ref in zip(self.plans, refs):
                try:
                    reports[plan.name].merge(ray.get(ref, timeout=60))
                except (RayActorError, RayTaskError, GetTimeoutError):
                    reports[plan.name].warnings.append(f"stage {plan.name}: actor unavailable at close")
        return reports

    def _get(self, refs, what: str):
        try:
            return ray.get(refs, timeout=self.batch_timeout_s)
        except GetTimeoutError:
            raise JobTimeoutError(f"{what} took longer than {self.batch_timeout_s:.0f} s") from None
        except RayTaskError as exc:
            cause = exc.cause if isinstance(exc.cause, Exception) else None
            if isinstance(cause, VdpError):
                raise cause from None
            raise StageError(f"{what} failed in a Ray actor: {cause or exc}") from None
        except RayActorError as exc:
            raise StageError(f"{what} failed: a stage actor died ({exc.__class__.__name__})") from None
