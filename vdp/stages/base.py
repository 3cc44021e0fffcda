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


@dataclass
class StageReport:
    """What a stage wants recorded in the job report (fallbacks, warnings)."""

    fallbacks: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def merge(self, other: "StageReport") -> None:
        self.fallbacks.extend(other.fallbacks)
        self.warnings.extend(other.warnings)


class Stage(ABC):
    """A model stage: setup on a device, process batches with carried state, flush.

    Subclasses set `name` and the names of the layers they add (`produces`) and need
    (`requires`). State is explicit: one loaded stage serves many streams.
    """

    name: ClassVar[str] = "stage"
    produces: ClassVar[tuple[str, ...]] = ()
    requires: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self.device = torch.device("cpu")
        self.report = StageReport()

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
