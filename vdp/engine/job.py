"""Run one JobSpec end to end: probe, plan chunks, run them (local or Ray), merge, write, report.

Everything a run leaves is inside its output directory: the outputs, ``spec.json`` (the
resolved spec), ``report.json`` (per-stage timings, frame counts, fallbacks, warnings, errors,
chunks, placement), also when the job fails, and ``.vdp/`` (the ledger of chunk runs and,
while the job is unfinished, the chunk store; see `vdp.engine.ledger`).

Flow: the video is split into chunks (`vdp.engine.chunks`; one chunk unless
``chunking.enabled``); chunks run on the stages' replicas (`vdp.engine.scheduler`) or one after
another in this process (``local``); their results are merged in frame order
(`vdp.engine.merge`) and written by the outputs, which appear under their final names only when
the job succeeds.

Resume (``resume=True``, ``vdp run --resume OUT``): the output directory's ``spec.json`` must
describe the same job. A job that already succeeded returns its saved report. Otherwise every
chunk the ledger lists as finished and kept is replayed from the store, the others run, and the
outputs are written again from the first frame. Chunks are the unit of resume: a job without
chunking is one chunk and runs again from its start. Without ``resume`` an earlier run's ledger
and store are discarded.
"""
from __future__ import annotations

import json
import os
import platform
import re
import shutil
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

import torch

from vdp.engine.chunks import Chunk, plan_chunks
from vdp.engine.ledger import WORKDIR, ChunkStore, Ledger, completed_chunks, spec_digest
from vdp.engine.plan import StagePlan
from vdp.engine.progress import ProgressCallback, ProgressTracker
from vdp.engine.prefetch import Prefetcher, decode_in_idle_time
from vdp.engine.writeback import BackgroundWriter
from vdp.errors import JobCancelledError, SpecError, VdpError
from vdp.idle import IDLE_PRIORITY_AVAILABLE
from vdp.spec import JobSpec
from vdp.types import FrameBatch, VideoInfo

_STALE_TEMP = re.compile(r"^\..+\.tmp")


@dataclass
class JobReport:
    """What `report.json` holds (``wall_seconds``: from the job's start to its end, after the
    process has loaded vdp's libraries)."""

    status: str = "running"
    input: dict[str, Any] = field(default_factory=dict)
    runner: str = ""
    device: str = ""
    frames: int = 0
    wall_seconds: float = 0.0
    stages: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    fallbacks: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    resumed: bool = False
    chunks: dict[str, Any] = field(default_factory=dict)
    placement: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "JobReport":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


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


def resolve_device(spec: JobSpec) -> str:
    """``auto`` means CUDA when this process sees a GPU, else CPU."""
    if spec.resources.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return spec.resources.device


def run_job(spec: JobSpec, out_dir: str | Path, *, local: bool = False,
            progress: ProgressCallback | None = None,
            plans: list[StagePlan] | None = None,
            cancel: threading.Event | None = None,
            resume: bool = False) -> JobReport:
    """Run a job and write its outputs, ``spec.json`` and ``report.json`` into `out_dir`.

    Args:
        spec: The validated job.
        out_dir: Output directory (created).
        local: Run stages in this process instead of Ray actors.
        progress: Called with per-stage progress a few times per second.
        plans: Stage recipes to use instead of the ones the spec names (tests).
        cancel: When set, the job stops before its next batch and raises `JobCancelledError`
            (its ledger and finished chunks stay, so it can be resumed).
        resume: Continue the job an earlier driver left unfinished in `out_dir`.

    Returns:
        The job report (also saved as ``report.json``).

    Raises:
        SpecError: `resume` and `out_dir` holds a different job.
        ResourceError: The cluster cannot hold the job's actors (every shortfall listed).
        VdpError: Decoding, a stage, an output or a timeout failed; the report says which.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    work = out / WORKDIR
    spec_json = spec.to_json()
    if resume:
        finished = _check_resumable(out, spec_json)
        if finished is not None:
            return finished
    else:
        shutil.rmtree(work, ignore_errors=True)
    _remove_stale_temps(out)
    _write_json(out / "spec.json", json.loads(spec_json))
    import vdp.io  # noqa: F401  TorchCodec loads torch._dynamo (~2 s), once per process: not the job's time
    t0 = time.monotonic()
    report = JobReport(runner="local" if local else "ray", device=resolve_device(spec) if local else "",
                       environment=_environment(), resumed=resume)
    writers: list = []
    try:
        _run(spec, spec_json, out, work, report, writers, local=local, progress=progress,
             plans=plans, cancel=cancel, resume=resume)
        report.status = "succeeded"
        return report
    except VdpError as exc:
        report.status, report.error = "failed", f"{type(exc).__name__}: {exc}"
        if isinstance(exc, JobCancelledError):
            report.status, report.error = "cancelled", "cancelled before completion"
        raise
    except KeyboardInterrupt:
        report.status, report.error = "cancelled", "cancelled before completion"
        raise
    finally:
        for w in writers:
            w.abort()
        report.wall_seconds = round(time.monotonic() - t0, 3)
        _write_json(out / "report.json", report.to_dict())


def _run(spec: JobSpec, spec_json: str, out: Path, work: Path, report: JobReport, writers: list, *,
         local: bool, progress: ProgressCallback | None, plans: list[StagePlan] | None,
         cancel: threading.Event | None, resume: bool) -> None:
    """The job's body; `writers` holds the outputs while they are open (the caller aborts them
    when this raises)."""
    from vdp.engine.preflight import check_input
    from vdp.io import encode_in_idle_time, probe
    from vdp.outputs import open_outputs
    from vdp.stages.registry import plan_stages

    info = probe(spec.input)
    report.input = info.to_dict()
    report.warnings.extend(info.warnings)
    check_input(spec, info)
    total = min(info.num_frames, spec.max_frames or info.num_frames)
    plans = plans if plans is not None else plan_stages(spec)
    chunks = plan_chunks(total, spec.chunking)
    ledger = Ledger(work / "ledger.jsonl")
    store = ChunkStore(work / "chunks")
    records = completed_chunks(ledger.events(), chunks, store) if resume else {}
    if resume and not _same_plan(ledger.events(), chunks):
        records = {}
        report.warnings.append("the chunk plan differs from the interrupted run's; every chunk runs again")
    reused = sorted(k for k, r in records.items() if r.done)
    attempts = {k: r.attempts for k, r in records.items()}
    store.remove_unlisted(set(reused))
    ledger.append("run", resume=resume, spec_sha256=spec_digest(spec_json), total_frames=total,
                  chunks=[c.to_dict() for c in chunks], reused=reused)
    todo = [c for c in chunks if c.index not in set(reused)]
    run_frames = sum(c.run_frames for c in todo)
    tracker = ProgressTracker(["decode", *[p.name for p in plans], "write"], frames_total=total,
                              callback=progress,
                              stage_totals={n: run_frames for n in ["decode", *[p.name for p in plans]]})
    writers.extend(open_outputs(spec, out, info))

    def write_batch(batch: FrameBatch) -> None:
        w0 = time.perf_counter()
        for w in writers:
            w.write(batch)
        tracker.add("write", len(batch), time.perf_counter() - w0)

    on_cpu = cpu_bound(local, report.device)
    background = None if on_cpu else BackgroundWriter(write_batch, timeout_s=spec.resources.batch_timeout_s)
    try:
        with encode_in_idle_time() if on_cpu else nullcontext():
            stage_reports, merger, reader, persist = _process(
                spec, plans, chunks, todo, attempts, reused, records, info, store, ledger, tracker,
                cancel, report, local, write_batch if background is None else background.submit)
        if background is not None:
            background.close()
    except BaseException:
        if background is not None:
            background.abort()
        raise
    report.outputs = [str(w.close().relative_to(out)) for w in writers]
    writers.clear()
    ledger.append("finished")
    shutil.rmtree(store.root, ignore_errors=True)
    tracker.finish()
    for r in stage_reports.values():
        report.fallbacks.extend(r.fallbacks)
        report.warnings.extend(r.warnings)
    report.warnings.extend(merger.warnings)
    report.warnings = list(dict.fromkeys(report.warnings))  # one per replica would repeat
    report.frames = tracker.progress["write"].frames_done
    report.stages = {p.stage: p.to_dict() for p in tracker.snapshot()}
    report.chunks.update({"plan": [c.to_dict() for c in chunks], "reused": reused,
                          "seams": [s.to_dict() for s in merger.seams],
                          "persisted": persist, "replay_reopens": reader.reopens})


def _process(spec: JobSpec, plans: list[StagePlan], chunks: list, todo: list, attempts: dict,
             reused: list, records: dict, info: VideoInfo, store: Any, ledger: Ledger,
             tracker: ProgressTracker, cancel: threading.Event | None, report: JobReport,
             local: bool, sink: Any) -> tuple[dict, Any, Any, bool]:
    """Run the chunks that still need running (locally or on Ray) and merge them into `sink`."""
    from vdp.engine.assembly import Assembler, FrameReader
    from vdp.engine.merge import ChunkMerger, merge_policies

    depth = spec.stages.depth
    kind = None if depth is None else ("metric" if depth.model.startswith("metric") else "relative")
    merger = ChunkMerger(chunks, merge_policies(kind), sink)
    reader = FrameReader(spec.input, batch_frames=spec.resources.batch_frames,
                         timeout_s=spec.resources.batch_timeout_s)
    persist = spec.chunking.resumable and len(chunks) > 1
    assembler = Assembler(chunks, merger, store, ledger, reader, persist=persist)
    for k in reused:
        assembler.reuse(chunks[k], records[k].kept)

    def open_source(chunk: Chunk) -> Iterator[FrameBatch]:
        return _chunk_source(spec, chunk, cancel)

    stage_reports: dict = {}
    if todo and local:
        from vdp.engine.local import LocalRunner, run_chunks_locally

        if spec.resources.threads:
            torch.set_num_threads(spec.resources.threads)
        if cpu_bound(local, report.device):
            def source(chunk: Chunk) -> Iterator[FrameBatch]:
                """Decoded in the models' idle time, else between model calls (see `cpu_bound`)."""
                return _chunk_source(spec, chunk, cancel, threads=torch.get_num_threads(),
                                     idle=IDLE_PRIORITY_AVAILABLE)
        else:
            def source(chunk: Chunk) -> Iterator[FrameBatch]:
                """Decoded a batch or two ahead in a thread, overlapping the models."""
                prefetcher = Prefetcher(lambda: open_source(chunk), depth=2)
                batches = prefetcher.batches(spec.resources.batch_timeout_s)
                return _cancellable(batches, cancel)

        runner = LocalRunner(plans, device=report.device)
        stage_reports = run_chunks_locally(runner, todo, attempts, assembler, source, info,
                                           ledger, tracker)
    elif todo:
        stage_reports = _run_on_ray(spec, plans, todo, attempts, assembler, open_source, info,
                                    ledger, tracker, cancel, report)
    assembler.pump()
    merger.finish()
    return stage_reports, merger, reader, persist


def _run_on_ray(spec: JobSpec, plans: list[StagePlan], todo: list[Chunk], attempts: dict[int, int],
                assembler: Any, open_source: Any, info: VideoInfo, ledger: Ledger,
                tracker: ProgressTracker, cancel: threading.Event | None,
                report: JobReport) -> dict:
    from vdp.engine.cluster import ensure_ray
    from vdp.engine.placement import ClusterView, acquire_replicas
    from vdp.engine.scheduler import ChunkScheduler

    ensure_ray()
    res = spec.resources
    replicas, placements, gpu = acquire_replicas(plans, res, max_replicas=len(todo),
                                                 threads=res.threads, timeout_s=res.batch_timeout_s)
    devices = sorted({r.info.get("device", "?") for rs in replicas.values() for r in rs})
    report.device = ",".join(devices)
    budget = (res.object_store_budget_mb * 2**20 if res.object_store_budget_mb
              else max(256 * 2**20, 0.25 * ClusterView.current().object_store_bytes))
    scheduler = ChunkScheduler(plans, replicas, ledger=ledger, max_in_flight=res.max_in_flight,
                               batch_timeout_s=res.batch_timeout_s, budget_bytes=int(budget),
                               max_attempts=res.max_attempts)
    report.placement = {"gpus": gpu, "stages": {p.plan.name: p.to_dict() for p in placements}}
    try:
        return scheduler.run(todo, attempts, assembler, open_source, info, tracker, cancel)
    finally:
        report.placement["replicas"] = {n: [r.to_dict() for r in rs] for n, rs in replicas.items()}
        report.placement["object_store"] = {"budget_bytes": int(budget),
                                            "peak_estimated_bytes": scheduler.budget.peak,
                                            "peak_batches_in_flight": scheduler.peak_in_flight}
        report.chunks.update({"runs": scheduler.chunk_log, "retries": scheduler.retries})


def _chunk_source(spec: JobSpec, chunk: Chunk, cancel: threading.Event | None,
                  threads: int = 1, idle: bool = False) -> Iterator[FrameBatch]:
    """The chunk's decoded batches (split at scene cuts when the spec asks), with `threads`
    FFmpeg threads; with `idle`, decoded ahead at idle priority (`decode_in_idle_time`)."""
    from vdp.io import iter_batches

    def decode_from(first: int) -> Iterator[FrameBatch]:
        if first >= chunk.stop:
            return iter(())
        return iter_batches(spec.input, batch_frames=spec.resources.batch_frames, start_frame=first,
                            stop_frame=chunk.stop, timeout_s=spec.resources.batch_timeout_s,
                            num_threads=threads)

    source = decode_in_idle_time(decode_from, chunk.run_start) if idle else decode_from(chunk.run_start)
    if spec.scene_cuts:
        from vdp.analysis.scenecut import SceneCutDetector
        from vdp.engine.segments import split_at_cuts

        source = split_at_cuts(source, SceneCutDetector().update)
    return _cancellable(source, cancel)


def _cancellable(source: Iterator[FrameBatch], cancel: threading.Event | None) -> Iterator[FrameBatch]:
    for batch in source:
        if cancel is not None and cancel.is_set():
            raise JobCancelledError("job cancelled")
        yield batch


def _check_resumable(out: Path, spec_json: str) -> JobReport | None:
    """Refuse to resume a different job; return the saved report of one that already succeeded."""
    saved_spec = out / "spec.json"
    if not saved_spec.is_file():
        return None
    try:
        saved = json.loads(saved_spec.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if spec_digest(json.dumps(saved)) != spec_digest(spec_json):
        raise SpecError(f"{out} holds a different job (its spec.json differs from this spec); "
                        f"resume it with its own spec, or choose another output directory")
    events = Ledger(out / WORKDIR / "ledger.jsonl").events()
    try:
        saved_report = json.loads((out / "report.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if (saved_report.get("status") == "succeeded" and events and events[-1]["event"] == "finished"
            and all((out / o).exists() for o in saved_report.get("outputs", []))):
        return JobReport.from_dict(saved_report)
    return None


def _same_plan(events: list[dict[str, Any]], chunks: list[Chunk]) -> bool:
    runs = [e for e in events if e["event"] == "run"]
    return not runs or runs[-1].get("chunks") == [c.to_dict() for c in chunks]


def _remove_stale_temps(out: Path) -> None:
    """Hidden temps a dead driver's writers left behind (never under a final name)."""
    for p in out.iterdir():
        if p.name != WORKDIR and _STALE_TEMP.match(p.name):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def _environment() -> dict[str, str]:
    import vdp

    return {"vdp": vdp.__version__, "torch": torch.__version__, "python": platform.python_version(),
            "host": platform.node(), "pid": str(os.getpid())}


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)
