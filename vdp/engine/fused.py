"""Stages that share a GPU, run as one chain inside one actor.

When depth, matte and stereo run on one card, separate actors would move every batch GPU ->
CPU -> object store -> CPU -> GPU between them. `FusedStage` holds the stages in one process
and passes each batch from one to the next in memory (tensors stay on the device), following
the chain protocol's rules (`vdp.engine.chain`): a flush of stage ``i`` passes through the
stages after it. Progress stays per stage: each call leaves one record per member in `calls`.

`should_fuse` decides when (``resources.fuse_stages``; by default when the stages would share
GPUs: fewer GPUs than stages); `fuse_plans` merges consecutive stages with the same replica
count into one plan (one actor per GPU runs them all); stages given different replica counts
stay apart, so each can scale on its own.
"""
from __future__ import annotations

from functools import partial
from typing import Any

import torch

from vdp.engine.plan import StagePlan
from vdp.engine.step import flush_step, process_step, step_meta
from vdp.stages.base import Stage, StageReport
from vdp.types import FrameBatch, VideoInfo


class FusedStage(Stage):
    """Member stages run in order in this process (see the module docstring).

    Args:
        plans: The members' recipes, in pipeline order.
    """

    def __init__(self, plans: list[StagePlan]) -> None:
        super().__init__()
        self.names = [p.name for p in plans]
        self.stages = [p.build() for p in plans]
        #: Per member, its record of the last `process` or `flush` call (``{"frames", "seconds"}``).
        self.calls: dict[str, dict] = {}

    def setup(self, device: torch.device | str) -> None:
        super().setup(device)
        for stage in self.stages:
            stage.setup(device)

    def init_state(self, info: VideoInfo) -> list[Any]:
        return [stage.init_state(info) for stage in self.stages]

    def process(self, batch: FrameBatch, state: list[Any]) -> tuple[FrameBatch | None, list[Any]]:
        self.calls = {}
        return self._through(batch, state, 0), state

    def flush(self, state: list[Any]) -> FrameBatch | None:
        self.calls = {}
        outs = []
        for i, (name, stage) in enumerate(zip(self.names, self.stages)):
            out, secs = flush_step(stage, name, state[i])
            self._count(name, step_meta(out, secs))
            out = self._through(out, state, i + 1)
            if out is not None and len(out):
                outs.append(out)
        return FrameBatch.concat(outs) if outs else None

    def take_report(self) -> StageReport:
        report = StageReport()
        for stage in self.stages:
            report.merge(stage.take_report())
        return report

    def _through(self, batch: FrameBatch | None, state: list[Any], first: int) -> FrameBatch | None:
        for i in range(first, len(self.stages)):
            if batch is None or len(batch) == 0:
                return batch
            batch, state[i], secs = process_step(self.stages[i], self.names[i], batch, state[i])
            self._count(self.names[i], step_meta(batch, secs))
        return batch

    def _count(self, name: str, meta: dict) -> None:
        old = self.calls.get(name)
        self.calls[name] = meta if old is None else {"frames": old["frames"] + meta["frames"],
                                                     "seconds": old["seconds"] + meta["seconds"]}


def should_fuse(setting: bool | None, plans: list[StagePlan], gpus: float) -> bool:
    """Whether the job's stages run fused: as `setting` says, or (None) when they must share
    GPUs: a GPU cluster with fewer GPUs than the job has stages."""
    if len(plans) < 2:
        return False
    if setting is not None:
        return setting
    return 0 < gpus < len(plans)


def fuse_plans(plans: list[StagePlan], replicas: dict[str, int]) -> list[StagePlan]:
    """Consecutive plans with equal replica counts (`replicas`, stage name -> count; absent:
    planned) merged into one plan each; a single plan is returned as it is."""
    groups: list[list[StagePlan]] = []
    for plan in plans:
        if groups and replicas.get(plan.name) == replicas.get(groups[-1][-1].name):
            groups[-1].append(plan)
        else:
            groups.append([plan])
    return [g[0] if len(g) == 1 else _fused(g) for g in groups]


def _fused(group: list[StagePlan]) -> StagePlan:
    return StagePlan("+".join(p.name for p in group), "+".join(p.key for p in group),
                     partial(FusedStage, group), num_gpus=max(p.num_gpus for p in group),
                     cost=sum(p.cost for p in group))


def fused_replicas(plans: list[StagePlan], replicas: dict[str, int]) -> dict[str, int]:
    """`replicas` with each fused plan's count (its members share one, `fuse_plans`)."""
    out = dict(replicas)
    for plan in plans:
        first = members(plan.name)[0]
        if plan.name not in out and first in replicas:
            out[plan.name] = replicas[first]
    return out


def members(name: str) -> list[str]:
    """The stage names inside a (possibly fused) plan's name."""
    return name.split("+")
