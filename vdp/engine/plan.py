"""StagePlan: how to build one stage, so any runner (local or Ray actor) can build it;
`plan_stages`: a job's plans, from the catalog."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import partial
from typing import Callable

from vdp import catalog
from vdp.spec import JobSpec
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


def plan_stages(spec: JobSpec) -> list[StagePlan]:
    """The job's stages in pipeline order, each built by its catalog entry's class."""
    plans = []
    for name in spec.stages.enabled():
        entry = catalog.stage(name)
        cls, options = entry.stage_class(), spec.stages.options(name)
        plans.append(StagePlan(name, _key(*cls.config_key(options, spec)),
                               partial(cls.from_job, options, spec),
                               spec.resources.gpus_per_stage, entry.cost))
    return plans


def _key(*parts: object) -> str:
    """A short, dashboard-friendly id of a stage configuration."""
    text = "-".join(str(p) for p in parts)
    if len(text) <= 48 and "/" not in text:
        return text
    return f"{parts[0]}-{hashlib.sha1(text.encode()).hexdigest()[:10]}"
