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
from pathlib import Path
from typing import Any

import torch

from vdp.engine.chunks import Chunk, decode_lead, plan_chunks
from vdp.engine.job_run import JobRun, cpu_bound
from vdp.engine.ledger import WORKDIR, ChunkStore, Ledger, completed_chunks, spec_digest
from vdp.engine.plan import StagePlan, plan_stages
from vdp.engine.progress import ProgressCallback, ProgressTracker
from vdp.engine.writeback import BackgroundWriter
from vdp.errors import JobCancelledError, SpecError, VdpError
from vdp.host_memory import return_large_buffers
from vdp.spec import JobSpec, output_name
from vdp.types import FrameBatch, JobReport

__all__ = ["JobReport", "cpu_bound", "resolve_device", "run_job"]

_STALE_TEMP = re.compile(r"^\..+\.tmp")


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
        SpecError: `resume` and `out_dir` holds a different job; `out_dir` cannot be used
            (`vdp.naming.OutputPathError`) or holds this job's outputs already.
        ResourceError: The cluster cannot hold the job's actors (every shortfall listed).
        VdpError: Decoding, a stage, an output or a timeout failed; the report says which.
    """
    return_large_buffers()  # frame-sized buffers and activations go back to the system when freed
    out = Path(out_dir)
    from vdp.naming import make_output_folder, refuse_existing

    if not resume:
        refuse_existing(out, [output_name(o, spec.output_stem()) for o in spec.outputs],
                        overwrite=spec.overwrite)
    make_output_folder(out)
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
    if spec.clip is not None:  # the job runs on the trimmed/resampled intermediate (outputs keep the name)
        from vdp.io.clip import clipped_spec

        spec = clipped_spec(spec, work)
    import vdp.io.decode  # noqa: F401  TorchCodec loads torch._dynamo (~2 s), once per process: not the job's time
    t0 = time.monotonic()
    report = JobReport(runner="local" if local else "ray", device=resolve_device(spec) if local else "",
                       environment=_environment(), resumed=resume)
    writers: list = []
    try:
        from vdp.engine.devices import require_device  # --device cuda without CUDA

        require_device(spec.resources.device, local=local)
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
    from vdp.engine.preflight import check_input, scaled_pictures
    from vdp.io import encode_in_idle_time, probe
    from vdp.outputs import open_outputs

    streams = spec.streams
    info = probe(spec.input, hdr=spec.hdr, video_stream=streams and streams.video,
                 audio_stream=streams and streams.audio)
    report.input = info.to_dict()
    if (work / "input" / "streams.json").is_file():  # a clip's intermediate: the original's streams
        report.input["streams_used"] = json.loads((work / "input" / "streams.json").read_text())
    report.warnings.extend(info.warnings)
    check_input(spec, info)
    report.warnings.extend(scaled_pictures(spec, info))
    total = min(info.num_frames, spec.max_frames or info.num_frames)
    plans = plans if plans is not None else plan_stages(spec)
    keyframes = info.keyframes
    chunks = plan_chunks(total, spec.chunking, keyframes)
    report.chunks["decode_lead_frames"] = lead = decode_lead(chunks, keyframes)
    if lead is not None and lead > total // 4:
        report.warnings.append(
            f"the input has {len(keyframes)} keyframe(s) in {info.num_frames} frames: chunks start between "
            f"them, so decoding also runs {lead} frames before chunk starts ({100 * lead / total:.0f}% "
            f"more) unless a chunk follows the previous one on the same replica; longer chunks "
            f"(chunking.chunk_frames), or the input re-encoded with a keyframe every 1-2 s (ffmpeg -g), avoid it")
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
    run = JobRun(spec, report, local, plans, info, chunks, todo, attempts, reused, records, store,
                 ledger, tracker, cancel)
    why_driver = run.writing_on_workers()
    if why_driver:
        done = _write_on_driver(run, out, info, writers, local, report)
    else:
        done = run.process_on_workers(lambda n, secs: tracker.add("write", n, secs))
        report.outputs = [str(p.relative_to(out)) for p in _publish(spec, out, info, total, done.written)]
        report.chunks["writes"] = [{"chunk": w.chunk, "frames": w.frames, "seconds": round(w.seconds, 3),
                                    **w.where} for w in done.written]
        shutil.rmtree(work / "parts", ignore_errors=True)
    if why_driver:
        report.placement["writing"] = {"on": "driver", "reason": why_driver}
    elif not spec.outputs:
        report.placement["writing"] = {"on": "nowhere", "reason": "the job has no outputs: the last "
                                                                  "stage drops its results"}
    else:
        report.placement["writing"] = {"on": "workers", "writers": done.merger.writer_info}
    ledger.append("finished")
    shutil.rmtree(store.root, ignore_errors=True)
    tracker.finish()
    for r in done.stage_reports.values():
        report.fallbacks.extend(r.fallbacks)
        report.warnings.extend(r.warnings)
    report.warnings.extend(done.merger.warnings)
    report.warnings = list(dict.fromkeys(report.warnings))  # one per replica would repeat
    report.frames = tracker.progress["write"].frames_done
    report.stages = {p.stage: p.to_dict() for p in tracker.snapshot()}
    report.chunks.update({"plan": [c.to_dict() for c in chunks], "reused": reused,
                          "seams": [s.to_dict() for s in done.merger.seams],
                          "persisted": done.persist,
                          "replay_reopens": done.reader.reopens if done.reader is not None else 0})


def _write_on_driver(run: JobRun, out: Path, info: Any, writers: list, local: bool,
                     report: JobReport) -> Any:
    """Every frame comes back here and the outputs are written in this process (in the models'
    idle time when they compute on this process's cores, else on a background thread)."""
    from vdp.io import encode_in_idle_time
    from vdp.outputs import open_outputs

    writers.extend(open_outputs(run.spec, out, info))
    tracker = run.tracker

    def write_batch(batch: FrameBatch) -> None:
        w0 = time.perf_counter()
        for w in writers:
            w.write(batch)
        tracker.add("write", len(batch), time.perf_counter() - w0)

    on_cpu = cpu_bound(local, report.device)
    background = None if on_cpu else BackgroundWriter(write_batch, timeout_s=run.spec.resources.batch_timeout_s)
    run.writer = background
    try:
        with encode_in_idle_time() if on_cpu else nullcontext():
            done = run.process(write_batch if background is None else background.submit)
        if background is not None:
            background.close()
    except BaseException:
        if background is not None:
            background.abort()
        raise
    report.outputs = [str(w.close().relative_to(out)) for w in writers]
    writers.clear()
    return done


def _publish(spec: JobSpec, out: Path, info: Any, total: int, written: list) -> list[Path]:
    """Join each output's parts, written by the chunks' writers, into its final file or folder."""
    from vdp import catalog
    from vdp.outputs.parts import join_parts

    stem = spec.output_stem()
    paths = []
    for i, o in enumerate(spec.outputs):
        entry = catalog.output(o.kind)
        audio = info.path if info.has_audio and getattr(entry.output_class(), "carries_audio", False) else None
        paths.append(join_parts(entry.parts, [Path(w.parts[i]) for w in written], out / output_name(o, stem),
                                fps=info.fps, frames=total, audio_from=audio,
                                timeout_s=spec.resources.batch_timeout_s, audio_stream=info.audio_stream))
    return paths


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
