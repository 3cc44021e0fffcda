"""StagePlan: how to build one stage, so any runner (local or Ray actor) can build it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from vdp.stages.base import Stage


@dataclass(frozen=True)
class StagePlan:
    """A recipe for one stage.

    Attributes:
        name: Stage name (``depth``, ``matte`` ...); also the progress key.
        key: Short configuration id; actors with the same name and key are reused across jobs.
        build: Picklable zero-argument callable returning a fresh, not-yet-set-up Stage.
        num_gpus: GPUs one actor of this stage takes when running on CUDA (fractions share).
        cost: Relative compute per frame, used to plan replicas until an actor of this stage
            has measured its own (seconds per frame, see `vdp.engine.placement`).
    """

    name: str
    key: str
    build: Callable[[], Stage]
    num_gpus: float = 0.0
    cost: float = 1.0

    def actor_name(self, replica: int = 0) -> str:
        """Name shown in the Ray dashboard, e.g. ``vdp:depth:vits-518:0``."""
        return f"vdp:{self.name}:{self.key}:{replica}"
