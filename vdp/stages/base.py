"""The Stage contract: what every model stage implements. Knows nothing of Ray.

A stage is driven by a runner (in-process or a Ray actor) like this::

    stage.setup(device)                     # load the model once
    state = stage.init_state(info)          # per stream
    for batch in batches:                   # in frame order, any batch size
        out, state = stage.process(batch, state)
        emit(out)                           # may be empty while the stage buffers
    emit(stage.flush(state))                # whatever is still buffered

Frames come out in the order they went in; the concatenation of all outputs covers every
input frame exactly once, whatever the batch sizes were.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from vdp.types import FrameBatch, VideoInfo


@dataclass(frozen=True)
class Fallback:
    """A run of frames a stage computed again in float32 because reduced precision failed.

    Attributes:
        stage: Stage name.
        first_frame: First source frame index of the run.
        last_frame: Last source frame index of the run.
        from_precision: ``fp16`` or ``bf16``.
        reason: What went wrong, e.g. ``non-finite output``.
        window: The stage's own unit, when it has one (a depth window's index).
    """

    stage: str
    first_frame: int
    last_frame: int
    from_precision: str
    reason: str
    window: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"stage": self.stage}
        if self.window is not None:
            d["window"] = self.window
        return {**d, "first_frame": self.first_frame, "last_frame": self.last_frame,
                "from": self.from_precision, "to": "fp32", "reason": self.reason}


@dataclass
class StageReport:
    """What a stage wants recorded in the job report (fallbacks as `Fallback.to_dict`, warnings)."""

    fallbacks: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def merge(self, other: "StageReport") -> None:
        self.fallbacks.extend(other.fallbacks)
        self.warnings.extend(other.warnings)

    def fell_back(self, fallback: Fallback) -> None:
        """Record a float32 re-run."""
        self.fallbacks.append(fallback.to_dict())

    def warn_once(self, warning: str) -> None:
        """Record `warning` unless this report holds it already."""
        if warning not in self.warnings:
            self.warnings.append(warning)


class Stage(ABC):
    """A model stage: setup on a device, process batches with carried state, flush.

    Subclasses set `name`; the layers a stage needs and produces, its cost and merge policy
    are declared in its `vdp.catalog` entry. State is explicit: one loaded stage serves many
    streams.
    """

    name: ClassVar[str] = "stage"

    def __init__(self) -> None:
        self.device = torch.device("cpu")
        self.report = StageReport()

    @classmethod
    def from_job(cls, options: Any, job: Any) -> "Stage":
        """The stage for `job` (a `vdp.spec.JobSpec`) with its `options`; override when the
        stage needs more of the job than its precision."""
        return cls(options, precision=job.precision)

    @classmethod
    def config_key(cls, options: Any, job: Any) -> tuple:
        """Parts of a short id of this configuration: actors of one stage with equal keys
        are reused across jobs, so every option that changes the stage's results belongs here."""
        return (*options.model_dump(mode="json").values(), job.precision)

    def setup(self, device: torch.device | str) -> None:
        """Load weights and move to `device`. Called once before any stream.

        Args:
            device: Where to run; the stage never picks its own device.
        """
        self.device = torch.device(device)

    @abstractmethod
    def init_state(self, info: VideoInfo) -> Any:
        """Return the carry for a new stream described by `info`."""

    @abstractmethod
    def process(self, batch: FrameBatch, state: Any) -> tuple[FrameBatch, Any]:
        """Consume one batch in order.

        Args:
            batch: The next frames of the stream (with layers from earlier stages).
            state: The carry returned by the previous call or `init_state`.

        Returns:
            The frames now complete (possibly none) with this stage's layers added, and the
            new state.
        """

    def flush(self, state: Any) -> FrameBatch | None:
        """Emit whatever is still buffered at end of stream (None when nothing is)."""
        return None

    def take_report(self) -> StageReport:
        """Return and reset what this stage wants recorded in the job report."""
        report, self.report = self.report, StageReport()
        return report
