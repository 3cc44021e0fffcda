"""Per-stage progress: frames done/total, throughput and ETA, reported through a callback."""
from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from vdp.engine.metrics import record_driver


@dataclass
class StageProgress:
    """Progress of one stage of one job.

    Attributes:
        stage: Stage name (``decode``, ``depth``, ``write`` ...).
        frames_done: Frames this stage has emitted.
        frames_total: Frames expected (None when unknown).
        busy_seconds: Time spent inside the stage's own calls (``decode``: the decoding
            threads' time; where that is not known, e.g. a batch split at a scene cut, the
            time the stages waited for the frames).
        elapsed_seconds: Wall time since the job started.
    """

    stage: str
    frames_done: int = 0
    frames_total: int | None = None
    busy_seconds: float = 0.0
    elapsed_seconds: float = 0.0

    @property
    def fps(self) -> float:
        """Frames per wall-clock second so far."""
        return self.frames_done / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    @property
    def busy_fps(self) -> float:
        """The stage's own throughput: frames per second of its own busy time (what it could
        sustain alone; `fps` is paced by the slowest stage)."""
        return self.frames_done / self.busy_seconds if self.busy_seconds > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        """Estimated seconds to completion at the current rate."""
        if self.frames_total is None or self.fps <= 0:
            return None
        return max(0.0, (self.frames_total - self.frames_done) / self.fps)

    def to_dict(self) -> dict:
        return {**asdict(self), "fps": round(self.fps, 3), "busy_fps": round(self.busy_fps, 3),
                "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds, 1)}


ProgressCallback = Callable[[list[StageProgress]], None]


@dataclass
class ProgressTracker:
    """Accumulates per-stage counts and calls `callback` at most every `interval_s` seconds.

    `frames_total` is every stage's total unless `stage_totals` names another for a stage
    (chunked jobs run the overlap frames twice, so their stages see more frames than are written).
    """

    stages: list[str]
    frames_total: int | None = None
    callback: ProgressCallback | None = None
    interval_s: float = 0.25
    stage_totals: dict[str, int] | None = None
    _start: float = field(default_factory=time.monotonic)
    _last_emit: float = 0.0

    def __post_init__(self) -> None:
        totals = self.stage_totals or {}
        self.progress = {s: StageProgress(s, frames_total=totals.get(s, self.frames_total))
                         for s in self.stages}
        self._lock = threading.RLock()  # the output writer thread reports too

    def add(self, stage: str, frames: int, busy_seconds: float = 0.0) -> None:
        with self._lock:
            p = self.progress[stage]
            p.frames_done += frames
            p.busy_seconds += busy_seconds
            self._maybe_emit()
        record_driver(stage, frames, busy_seconds)  # Ray metrics

    def snapshot(self) -> list[StageProgress]:
        now = time.monotonic() - self._start
        for p in self.progress.values():
            p.elapsed_seconds = now
        return list(self.progress.values())

    def _maybe_emit(self, force: bool = False) -> None:
        with self._lock:
            now = time.monotonic()
            if self.callback and (force or now - self._last_emit >= self.interval_s):
                self._last_emit = now
                self.callback(self.snapshot())

    def finish(self) -> None:
        self._maybe_emit(force=True)
