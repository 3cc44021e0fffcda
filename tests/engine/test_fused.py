"""Fused stages: stages sharing GPUs run as one chain in one actor, with the same results."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch

from vdp.engine.fused import FusedStage, fuse_plans, fused_replicas, should_fuse
from vdp.engine.job import run_job
from vdp.engine.local import LocalRunner
from vdp.engine.plan import StagePlan
from vdp.spec import JobSpec
from tests.conftest import MEDIA
from tests.engine.stages_for_tests import ChunkAffineStage, WindowStage
from tests.engine.test_runners import INFO, synthetic_batches

CLIP = MEDIA / "decord__flipping_a_pancake.mkv"
FRAMES = 48


def plans() -> list[StagePlan]:
    """A depth stage (with an alpha layer) and a buffering stage that emits in windows of 5."""
    return [StagePlan("depth", "fz", partial(ChunkAffineStage, 0.3), num_gpus=1.0),
            StagePlan("matte", "fz", partial(WindowStage, 5), num_gpus=1.0)]


def spec(fuse: bool | None, chunked: bool = True, replicas: dict | None = None) -> JobSpec:
    return JobSpec.parse({"input": str(CLIP), "max_frames": FRAMES, "stages": {"depth": {}, "matte": {}},
                          "outputs": [{"kind": "depth_npy"}, {"kind": "alpha_png16"}],
                          "resources": {"batch_frames": 8, "fuse_stages": fuse, "replicas": replicas or {}},
                          "chunking": {"enabled": chunked, "chunk_frames": 16, "overlap_frames": 8}})


def depth(out: Path) -> np.ndarray:
    return np.concatenate([np.load(p) for p in sorted((out / "depth_npy").iterdir())])


def test_fused_stage_gives_what_the_chain_gives_including_what_flushes_through():
    source = list(synthetic_batches(23, 4))  # 23 frames: the window stage keeps 3 for its flush
    chained = []
    LocalRunner(plans()).run(iter(source), INFO, chained.append)
    fused_plan = fuse_plans(plans(), {})
    assert [p.name for p in fused_plan] == ["depth+matte"]
    fused = []
    LocalRunner(fused_plan).run(iter(source), INFO, fused.append)
    a, b = torch.cat([x.layers["window_mean"] for x in chained]), torch.cat([x.layers["window_mean"] for x in fused])
    assert len(a) == len(b) == 23 and torch.equal(a, b)
    assert torch.equal(torch.cat([x.layers["depth"] for x in chained]), torch.cat([x.layers["depth"] for x in fused]))
    stage = fused_plan[0].build()
    assert isinstance(stage, FusedStage) and stage.names == ["depth", "matte"]


def test_fusing_is_decided_by_sharing_and_replica_counts():
    two = plans()
    assert should_fuse(None, two, gpus=1) and not should_fuse(None, two, gpus=2)
    assert not should_fuse(None, two, gpus=0)  # CPU-only: actors take turns on the cores instead
    assert should_fuse(True, two, gpus=8) and not should_fuse(False, two, gpus=1)
    assert not should_fuse(True, two[:1], gpus=1)
    assert [p.name for p in fuse_plans(two, {"depth": 2, "matte": 2})] == ["depth+matte"]
    assert [p.name for p in fuse_plans(two, {"depth": 3})] == ["depth", "matte"]  # scaled apart
    fused = fuse_plans(two, {"depth": 2, "matte": 2})
    assert fused_replicas(fused, {"depth": 2, "matte": 2})["depth+matte"] == 2


def test_fused_actors_on_ray_match_separate_actors(tmp_path, fresh_actors):
    fused = run_job(spec(True, replicas={"depth": 2, "matte": 2}), tmp_path / "fused", plans=plans())
    apart = run_job(spec(False), tmp_path / "apart", plans=plans())
    assert list(fused.placement["replicas"]) == ["depth+matte"]
    assert len(fused.placement["replicas"]["depth+matte"]) == 2  # the members' common count
    assert sorted(apart.placement["replicas"]) == ["depth", "matte"]
    assert np.array_equal(depth(tmp_path / "fused"), depth(tmp_path / "apart"))
    pngs = sorted((tmp_path / "fused" / "alpha_png16").iterdir())
    assert len(pngs) == FRAMES
    assert all(p.read_bytes() == (tmp_path / "apart" / "alpha_png16" / p.name).read_bytes() for p in pngs)
    # progress is still counted per member stage
    for stage in ("depth", "matte"):
        assert fused.stages[stage]["frames_done"] == apart.stages[stage]["frames_done"] > 0
