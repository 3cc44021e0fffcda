"""Run one JobSpec end to end: probe, decode, stages (local or Ray), outputs, report.

Everything a run leaves is inside its output directory: the outputs, ``spec.json`` (the
resolved spec) and ``report.json`` (per-stage timings, frame counts, fallbacks, warnings,
errors), also when the job fails.
"""
from __future__ import annotations

import json
import os
import platform
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vdp.engine.plan import StagePlan
from vdp.engine.progress import ProgressCallback, ProgressTracker
from vdp.errors import JobCancelledError, VdpError
from vdp.spec import JobSpec
from vdp.types import FrameBatch


@dataclass
class JobReport:
    """What `report.json` holds."""

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

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def resolve_device(spec: JobSpec) -> str:
    """``auto`` means CUDA when this process sees a GPU, else CPU."""
    if spec.resources.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return spec.resources.device


def run_job(spec: JobSpec, out_dir: str | Path, *, local: bool = False,
            progress: ProgressCallback | None = None,
            plans: list[StagePlan] | None = None,
            cancel: threading.Event | None = None) -> JobReport:
    """Run a job and write its outputs, ``spec.json`` and ``report.json`` into `out_dir`.

    Args:
        spec: The validated job.
        out_dir: Output directory (created).
        local: Run stages in this process instead of Ray actors.
        progress: Called with per-stage progress a few times per second.
        plans: Stage recipes to use instead of the ones the spec names (tests).
        cancel: When set, the job stops before its next batch and raises `JobCancelledError`.

    Returns:
        The job report (also saved as ``report.json``).

    Raises:
        VdpError: Decoding, a stage, an output or a timeout failed; the report says which.
    """
    from vdp.io import iter_batches, probe
    from vdp.outputs import open_outputs
    from vdp.stages.registry import plan_stages

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "spec.json", json.loads(spec.to_json()))
    t0 = time.monotonic()
    device = resolve_device(spec)
    report = JobReport(runner="local" if local else "ray", device=device, environment=_environment())
    writers = []
    try:
        info = probe(spec.input)
        report.input = info.to_dict()
        total = min(info.num_frames, spec.max_frames or info.num_frames)
        plans = plans if plans is not None else plan_stages(spec)
        tracker = ProgressTracker(["decode", *[p.name for p in plans], "write"],
                                  frames_total=total, callback=progress)
        runner = _make_runner(spec, plans, device, local)
        writers = open_outputs(spec, out, info)

        def sink(batch: FrameBatch) -> None:
            w0 = time.perf_counter()
            for w in writers:
                w.write(batch)
            tracker.add("write", len(batch), time.perf_counter() - w0)

        source = iter_batches(spec.input, batch_frames=spec.resources.batch_frames,
                              stop_frame=total, timeout_s=spec.resources.batch_timeout_s)
        if spec.scene_cuts:
            from vdp.analysis.scenecut import SceneCutDetector
            from vdp.engine.segments import split_at_cuts

            source = split_at_cuts(source, SceneCutDetector().update)
        stage_reports = runner.run(_cancellable(source, cancel), info, sink, tracker)
        report.outputs = [str(w.close().relative_to(out)) for w in writers]
        writers = []
        tracker.finish()
        for name, r in stage_reports.items():
            report.fallbacks.extend(r.fallbacks)
            report.warnings.extend(r.warnings)
        report.frames = tracker.progress["write"].frames_done
        report.stages = {p.stage: p.to_dict() for p in tracker.snapshot()}
        report.status = "succeeded"
        return report
    except VdpError as exc:
        report.status, report.error = "failed", f"{type(exc).__name__}: {exc}"
        raise
    except (KeyboardInterrupt, JobCancelledError):
        report.status, report.error = "cancelled", "cancelled before completion"
        raise
    finally:
        for w in writers:
            w.abort()
        report.wall_seconds = round(time.monotonic() - t0, 3)
        _write_json(out / "report.json", report.to_dict())


def _cancellable(source, cancel: threading.Event | None):
    for batch in source:
        if cancel is not None and cancel.is_set():
            raise JobCancelledError("job cancelled")
        yield batch


def _make_runner(spec: JobSpec, plans: list[StagePlan], device: str, local: bool):
    if local:
        from vdp.engine.local import LocalRunner

        if spec.resources.threads:
            torch.set_num_threads(spec.resources.threads)
        return LocalRunner(plans, device=device)
    from vdp.engine.ray_runner import RayRunner

    return RayRunner(plans, use_gpu=device == "cuda", max_in_flight=spec.resources.max_in_flight,
                     batch_timeout_s=spec.resources.batch_timeout_s, threads=spec.resources.threads)


def _environment() -> dict[str, str]:
    import vdp

    return {"vdp": vdp.__version__, "torch": torch.__version__, "python": platform.python_version(),
            "host": platform.node(), "pid": str(os.getpid())}


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)
