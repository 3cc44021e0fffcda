"""JobRun: one run of a job once it is planned: its chunks, ledger, progress, and where they run.

`vdp.engine.job.run_job` plans the run (probe, chunk plan, resume records) and builds a
`JobRun`; `JobRun.process` runs the chunks that still need running, in this process or on Ray,
and merges their results in frame order into the writers' sink.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Iterator

import torch

from vdp.engine.chunks import Chunk
from vdp.engine.ledger import ChunkStore, Ledger
from vdp.engine.plan import StagePlan
from vdp.engine.prefetch import Prefetcher, decode_in_idle_time, timed_batches
from vdp.engine.progress import ProgressTracker
from vdp.errors import JobCancelledError
from vdp.idle import IDLE_PRIORITY_AVAILABLE
from vdp.spec import JobSpec
from vdp.stages.base import StageReport
from vdp.types import FrameBatch, JobReport, VideoInfo


def cpu_bound(local: bool, device: str) -> bool:
    """Whether the models compute on this process's CPU cores.

    Then decoding and writing do not run in normal threads beside the models: the models
    already use every core, and such a thread only preempts one of their threads while the
    others wait for it (measured on 2 cores: slower than taking turns). Decoding runs ahead on
    an idle-priority thread (`decode_in_idle_time`) and PNG frames encode on idle-priority
    threads (`vdp.io.encode_in_idle_time`): both only take the cores when the models leave them
    idle. The other writers run between model calls, spread over the cores; so does decoding
    where the OS has no idle priority. With a GPU or Ray actors, decode and writing overlap the
    models in background threads.
    """
    return local and device == "cpu"


@dataclass
class Processed:
    """What `JobRun.process` leaves for the report."""

    stage_reports: dict[str, StageReport]
    merger: Any  # vdp.engine.merge.ChunkMerger, or the RemoteAssembler (seams, warnings)
    reader: Any  # vdp.engine.assembly.FrameReader (None when the workers wrote)
    persist: bool
    #: Per chunk, what its writer on the workers wrote (`WriteStats`); empty when the driver wrote.
    written: list[Any] = field(default_factory=list)


@dataclass
class JobRun:
    """A planned run of one job (see the module docstring).

    Attributes:
        spec: The job.
        report: The report being filled in (``device`` and ``placement`` are set here).
        local: Run the stages in this process instead of on Ray actors.
        plans: Stage recipes, in pipeline order.
        info: The source's metadata.
        chunks: Every chunk of the plan.
        todo: The chunks that still need running.
        attempts: Runs each chunk had so far (updated in place).
        reused: Chunks replayed from the store (resume).
        records: The ledger's records of earlier runs' chunks (resume).
        store: Where finished chunks' results wait for the merge.
        ledger: The run's ledger.
        tracker: Per-stage progress.
        cancel: When set, the run stops and raises `JobCancelledError`.
        writer: The driver's background writer, if any (idle priority on CPU-only Ray runs).
        decode_seconds: On the local path, the seconds each batch (by its first frame) took to
            decode in the thread that decoded it, until the chain takes it.
    """

    spec: JobSpec
    report: JobReport
    local: bool
    plans: list[StagePlan]
    info: VideoInfo
    chunks: list[Chunk]
    todo: list[Chunk]
    attempts: dict[int, int]
    reused: list[int]
    records: dict[int, Any]
    store: ChunkStore
    ledger: Ledger
    tracker: ProgressTracker
    cancel: threading.Event | None = None
    writer: Any = None  # vdp.engine.writeback.BackgroundWriter
    decode_seconds: dict[int, float] = field(default_factory=dict)

    @property
    def frames_per_batch(self) -> int:
        """Frames per decoded batch of this source (`ResourcesSpec.frames_per_batch`)."""
        return self.spec.resources.frames_per_batch(self.info.width, self.info.height)

    def writing_on_workers(self) -> str:
        """Why the outputs are written by this driver ("" when the chunks' writers on the
        workers write them, next to the models: `vdp.engine.remote_assembly`)."""
        from vdp import catalog

        if self.local:
            return "the job runs in this process"
        if self.reused:
            return "a resumed run writes on the driver (chunks kept by the earlier run replay here)"
        if not self.spec.resources.write_on_workers:
            return "resources.write_on_workers is off"
        whole = [o.kind for o in self.spec.outputs if catalog.output(o.kind).parts is None]
        if whole:
            return f"outputs {whole} are written in one piece"
        return ""

    def process_on_workers(self, on_written: Callable[[int, float], None]) -> Processed:
        """Run every chunk on Ray with its outputs written beside its last stage, in parts
        (`vdp.outputs.parts`; the caller joins them); a job without outputs drops its results
        where they are made (`vdp.engine.no_outputs`)."""
        import uuid

        from vdp.catalog import merge_policies
        from vdp.engine.remote_assembly import RemoteAssembler

        spec = self.spec
        persist = spec.chunking.resumable and len(self.chunks) > 1
        import ray

        from vdp.engine.cluster import ensure_ray

        ensure_ray()
        if not spec.outputs:  # nothing reads the results: they are dropped where they are made
            from vdp.engine.no_outputs import ResultlessAssembler

            counter = ResultlessAssembler(self.chunks, self.ledger, on_written=on_written)
            return Processed(self._run_on_ray(counter, keep_results=False), counter, None, False,
                             counter.finish())
        job_tag = f"{ray.get_runtime_context().get_job_id()}:{uuid.uuid4().hex[:12]}"
        assembler = RemoteAssembler(self.chunks, spec.to_json(), self.info, merge_policies(spec),
                                    self.store.root.parent / "parts", self.store if persist else None,
                                    self.ledger, job_tag, spec.resources.batch_timeout_s,
                                    on_written=on_written, idle_s=spec.resources.actor_idle_s)
        try:
            stage_reports = self._run_on_ray(assembler)
            written = assembler.finish()
        except BaseException:
            assembler.abort()
            raise
        assembler.release()
        return Processed(stage_reports, assembler, None, persist, written)

    def process(self, sink: Callable[[FrameBatch], None]) -> Processed:
        """Run the chunks that still need running and merge them, in frame order, into `sink`."""
        from vdp.engine.assembly import Assembler, FrameReader
        from vdp.catalog import merge_policies
        from vdp.engine.merge import ChunkMerger

        spec = self.spec
        merger = ChunkMerger(self.chunks, merge_policies(spec), sink)
        reader = FrameReader(spec.input, batch_frames=self.frames_per_batch,
                             timeout_s=spec.resources.batch_timeout_s, hdr=spec.hdr,
                             stream_index=self.info.video_stream)
        persist = spec.chunking.resumable and len(self.chunks) > 1
        assembler = Assembler(self.chunks, merger, self.store, self.ledger, reader, persist=persist,
                              keep_frames=self.keep_frames)
        for k in self.reused:
            assembler.reuse(self.chunks[k], self.records[k].kept)
        stage_reports: dict[str, StageReport] = {}
        if self.todo:
            stage_reports = (self._run_locally(assembler) if self.local else self._run_on_ray(assembler))
        assembler.pump()
        merger.finish()
        return Processed(stage_reports, merger, reader, persist)

    def chunk_source(self, chunk: Chunk, threads: int = 1, idle: bool = False) -> Iterator[FrameBatch]:
        """The chunk's decoded batches (split at scene cuts when the spec asks), with `threads`
        FFmpeg threads; with `idle`, decoded ahead at idle priority (`decode_in_idle_time`).
        The opened video is kept for the next chunk (`kept_batches`): a long file is scanned
        once, not once per chunk."""
        from vdp.engine.kept_sources import kept_batches

        res = self.spec.resources

        def decode_from(first: int) -> Iterator[FrameBatch]:
            if first >= chunk.stop:
                return iter(())
            batches = kept_batches(self.spec.input, start=first, stop=chunk.stop, batch_frames=self.frames_per_batch,
                                   timeout_s=res.batch_timeout_s, num_threads=threads, hdr=self.spec.hdr,
                                   stream_index=self.info.video_stream, keep_tail=self.next_overlap)
            return timed_batches(batches, self.decode_seconds) if self.local else batches

        source = decode_in_idle_time(decode_from, chunk.run_start) if idle else decode_from(chunk.run_start)
        if self.spec.scene_cuts:
            from vdp.analysis.scenecut import SceneCutDetector
            from vdp.engine.segments import split_at_cuts

            source = split_at_cuts(source, SceneCutDetector().update)
        return cancellable(source, self.cancel)

    def _decoded_in(self, batch: FrameBatch) -> float | None:
        """The seconds `batch` took to decode (None: not noted, e.g. a batch split at a cut)."""
        return self.decode_seconds.pop(int(batch.indices[0]), None) if len(batch) else None

    def _run_locally(self, assembler: Any) -> dict[str, StageReport]:
        from vdp.engine.local import LocalRunner, run_chunks_locally

        res = self.spec.resources
        if res.threads:
            torch.set_num_threads(res.threads)
        if cpu_bound(self.local, self.report.device):
            def source(chunk: Chunk) -> Iterator[FrameBatch]:
                """Decoded in the models' idle time, else between model calls (see `cpu_bound`)."""
                return self.chunk_source(chunk, threads=torch.get_num_threads(), idle=IDLE_PRIORITY_AVAILABLE)
        else:
            def source(chunk: Chunk) -> Iterator[FrameBatch]:
                """Decoded a batch or two ahead in a thread, overlapping the models."""
                prefetcher = Prefetcher(lambda: self.chunk_source(chunk), depth=2)
                return cancellable(prefetcher.batches(res.batch_timeout_s), self.cancel)

        runner = LocalRunner(self.plans, device=self.report.device)
        return run_chunks_locally(runner, self.todo, self.attempts, assembler, source, self.info,
                                  self.ledger, self.tracker, self._decoded_in)

    @property
    def next_overlap(self) -> int:
        """Frames a chunk's decoder keeps for the next chunk's overlap (0 with one chunk)."""
        return self.spec.chunking.overlap_frames if len(self.chunks) > 1 else 0

    @property
    def keep_frames(self) -> bool:
        """Whether some output reads the RGB frames (its catalog entry needs ``rgb``); else
        results travel and merge without them."""
        from vdp import catalog

        return any("rgb" in catalog.output(o.kind).needs for o in self.spec.outputs)

    def worker_decode(self) -> tuple[Any, str]:
        """The request for decoding on the first stage's actors (`vdp.engine.worker_decode`),
        or None and why chunks are decoded here and shipped instead."""
        import os

        from vdp.engine.worker_decode import DecodeRequest

        if self.spec.scene_cuts:
            return None, "scene-cut detection runs on frames decoded by the driver"
        res = self.spec.resources
        return DecodeRequest(path=os.path.abspath(self.spec.input), size=os.path.getsize(self.spec.input),
                             start=0, stop=0, batch_frames=self.frames_per_batch,
                             timeout_s=res.batch_timeout_s, hdr=self.spec.hdr,
                             stream_index=self.info.video_stream, keep_tail=self.next_overlap), ""

    def _run_on_ray(self, assembler: Any, keep_results: bool = True) -> dict[str, StageReport]:
        """Run the chunks to do on Ray into `assembler`; without `keep_results`, the last stage
        returns no batches (a job without outputs)."""
        from vdp.engine.assembly import Assembler
        from vdp.engine.cluster import ensure_ray
        from vdp.engine.fused import fuse_plans, fused_replicas, should_fuse
        from vdp.engine.placement import ClusterView, acquire_replicas
        from vdp.engine.scheduler import ChunkScheduler

        ensure_ray()
        res, report = self.spec.resources, self.report
        plans = self.plans
        if should_fuse(res.fuse_stages, plans, ClusterView.current().gpus_total):
            plans = fuse_plans(plans, res.replicas)
            res = res.model_copy(update={"replicas": fused_replicas(plans, res.replicas)})
        replicas, placements, gpu = acquire_replicas(plans, res, max_replicas=len(self.todo),
                                                     threads=res.threads, timeout_s=res.batch_timeout_s,
                                                     cpu_turns=True)
        report.device = ",".join(sorted({r.info.get("device", "?") for rs in replicas.values() for r in rs}))
        budget = int(res.object_store_budget_mb * 2**20 if res.object_store_budget_mb
                     else max(256 * 2**20, 0.25 * ClusterView.current().object_store_bytes))
        scheduler = ChunkScheduler(plans, replicas, ledger=self.ledger, max_in_flight=res.max_in_flight,
                                   batch_timeout_s=res.batch_timeout_s, budget_bytes=budget,
                                   max_attempts=res.max_attempts)
        report.placement = {"gpus": gpu, "stages": {p.plan.name: p.to_dict() for p in placements}}
        decode, why_driver = self.worker_decode()
        remote = not isinstance(assembler, Assembler)
        if remote:
            assembler.idle = not gpu  # CPU-only nodes: writers work in the models' idle time
        report.placement["frames_to_driver"] = self.keep_frames and not remote
        if not gpu:  # CPU-only: actors take turns on the cores, the driver works in their idle time
            report.placement["cpu"] = self._lower_driver_priority(replicas, res.threads)
        source = partial(self.chunk_source, idle=not gpu and IDLE_PRIORITY_AVAILABLE)
        try:
            return scheduler.run(self.todo, self.attempts, assembler, source, self.info,
                                 self.tracker, self.cancel, decode=decode, why_driver=why_driver,
                                 keep_frames=self.keep_frames,
                                 keep_results=keep_results)
        finally:
            report.warnings.extend(scheduler.warnings)
            report.placement["replicas"] = {n: [r.to_dict() for r in rs] for n, rs in replicas.items()}
            report.placement["object_store"] = {"budget_bytes": budget,
                                                "peak_estimated_bytes": scheduler.budget.peak,
                                                "peak_batches_in_flight": scheduler.peak_in_flight}
            report.chunks.update({"runs": scheduler.chunk_log, "retries": scheduler.retries})

    def _lower_driver_priority(self, replicas: dict[str, list[Any]], threads: int | None) -> dict[str, Any]:
        """Move the driver's writing to idle priority; the CPU allotment for report.json."""
        from vdp.engine.cores import CpuAllotment

        allot = CpuAllotment(threads=threads, driver_idle=IDLE_PRIORITY_AVAILABLE)
        if self.writer is not None and IDLE_PRIORITY_AVAILABLE:
            self.writer.lower_priority()
        return {**allot.to_dict(),
                "actors": {r.name: {"node_id": r.info.get("node_id"), "torch_threads": r.info.get("torch_threads"),
                                    "interop_threads": r.info.get("interop_threads"),
                                    "turns": r.info.get("cpu_turns") is not None}
                           for rs in replicas.values() for r in rs}}


def cancellable(source: Iterator[FrameBatch], cancel: threading.Event | None) -> Iterator[FrameBatch]:
    """`source`, raising `JobCancelledError` before the next batch once `cancel` is set."""
    for batch in source:
        if cancel is not None and cancel.is_set():
            raise JobCancelledError("job cancelled")
        yield batch
