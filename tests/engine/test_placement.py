"""Placement: replicas planned from GPUs and costs, one resource check listing every shortfall,
named actors pinned per (fake) GPU and reused across jobs, idle actors evicted, slow replicas
getting fewer chunks."""
from __future__ import annotations

from functools import partial

import pytest
import ray

from vdp.engine.job import run_job
from vdp.engine.placement import ClusterView, StagePlacement, check_resources, measured_costs, plan_placement
from vdp.engine.plan import StagePlan
from vdp.errors import ResourceError
from vdp.spec import JobSpec, ResourcesSpec
from tests.conftest import MEDIA
from tests.engine.stages_for_tests import ChunkAffineStage, GrayEmaStage, ReplicaSpeedStage

CLIP = MEDIA / "decord__flipping_a_pancake.mkv"


def plans3():
    return [StagePlan("depth", "p", GrayEmaStage, cost=3.0), StagePlan("refine", "p", GrayEmaStage, cost=1.0),
            StagePlan("matte", "p", GrayEmaStage, cost=1.0)]


def reps(placements) -> dict[str, int]:
    return {p.plan.name: p.replicas for p in placements}


def test_replicas_grow_at_the_bottleneck_until_gpus_run_out():
    got = plan_placement(plans3(), ResourcesSpec(), use_gpu=True, gpus_available=8, max_replicas=10)
    assert reps(got) == {"depth": 4, "refine": 2, "matte": 2}
    got = plan_placement(plans3(), ResourcesSpec(), use_gpu=True, gpus_available=5, max_replicas=10)
    assert reps(got) == {"depth": 3, "refine": 1, "matte": 1}
    # measured seconds per frame replace the hints when every stage has one
    got = plan_placement(plans3(), ResourcesSpec(), use_gpu=True, gpus_available=5, max_replicas=10,
                         costs={"depth": 0.01, "refine": 0.01, "matte": 0.03})
    assert reps(got) == {"depth": 1, "refine": 1, "matte": 3} and got[0].measured


def test_fixed_replicas_fractions_chunk_cap_and_cpu():
    res = ResourcesSpec(replicas={"refine": 2}, stage_gpus={"matte": 0.5})
    got = plan_placement(plans3(), res, use_gpu=True, gpus_available=4, max_replicas=10)
    # 1 + 2 + 0.5 GPUs; the bottleneck (depth) needs a whole GPU, only 0.5 is left: stop there
    assert reps(got) == {"depth": 1, "refine": 2, "matte": 1}
    assert [p.num_gpus for p in got] == [1.0, 1.0, 0.5]
    costly_matte = [StagePlan("depth", "p", GrayEmaStage), StagePlan("matte", "p", GrayEmaStage, cost=4.0)]
    got = plan_placement(costly_matte, ResourcesSpec(stage_gpus={"matte": 0.5}), use_gpu=True,
                         gpus_available=2, max_replicas=10)
    assert reps(got) == {"depth": 1, "matte": 2}  # two matte actors share one GPU
    got = plan_placement(plans3(), ResourcesSpec(), use_gpu=True, gpus_available=16, max_replicas=2)
    assert reps(got) == {"depth": 2, "refine": 1, "matte": 1}  # depth capped by 2 chunks: done
    got = plan_placement(plans3(), ResourcesSpec(replicas={"depth": 3}), use_gpu=False, gpus_available=0, max_replicas=9)
    assert reps(got) == {"depth": 3, "refine": 1, "matte": 1} and all(p.num_gpus == 0 for p in got)


def test_resource_check_lists_every_shortfall_in_one_message():
    cluster = ClusterView(gpus_total=2, gpus_free=1, node_gpus=(1.0, 1.0), node_cpus=(8, 8), object_store_bytes=2**30)
    placements = [StagePlacement(plans3()[0], 2, 2.0, 1.0), StagePlacement(plans3()[2], 1, 1.0, 1.0)]
    res = ResourcesSpec(device="cuda", object_store_budget_mb=4096)
    with pytest.raises(ResourceError) as err:
        check_resources(placements, res, cluster, use_gpu=True, gpus_reusable=0, gpus_evictable=0)
    msg = str(err.value)
    assert "stage 'depth': one actor takes 2 GPUs but the largest node has 1" in msg
    assert "GPUs: the job needs 5 more GPUs (depth 2 x 2, matte 1 x 1) but 1 of the cluster's 2 are free" in msg
    assert "object_store_budget_mb=4096 exceeds the cluster's object store (1024 MB)" in msg
    empty = ClusterView(0, 0, (0.0,), (8,), 2**30)
    with pytest.raises(ResourceError, match="resources.device is 'cuda' but the cluster has no GPU"):
        check_resources(placements, ResourcesSpec(device="cuda"), empty, use_gpu=True, gpus_reusable=0, gpus_evictable=0)


def job(frames: int = 48, chunk: int = 16, **resources) -> JobSpec:
    return JobSpec.parse({"input": str(CLIP), "max_frames": frames, "stages": {"depth": {}},
                          "outputs": [{"kind": "depth_npz"}], "resources": {"batch_frames": 8, **resources},
                          "chunking": {"enabled": True, "chunk_frames": chunk, "overlap_frames": 4}})


def named_actors() -> set[str]:
    return {e["name"] for e in ray.util.list_named_actors(all_namespaces=True) if e["namespace"] == "vdp"}


def test_shortfall_is_reported_before_any_actor_starts(tmp_path, fresh_actors):
    plans = [StagePlan("depth", "big", GrayEmaStage, num_gpus=1.0)]
    with pytest.raises(ResourceError, match=r"needs 5 more GPUs \(depth 5 x 1\) but 4 of the cluster's 4"):
        run_job(job(replicas={"depth": 5}), tmp_path, plans=plans)
    assert not any(n.startswith("vdp:depth:big") for n in named_actors())


def test_actors_are_named_pinned_per_gpu_reused_and_evicted_when_idle(tmp_path, fresh_actors):
    plans_a = [StagePlan("depth", "a", partial(ChunkAffineStage, 0.3), num_gpus=1.0)]
    first = run_job(job(), tmp_path / "1", plans=plans_a)
    names = [r["name"] for r in first.placement["replicas"]["depth"]]
    assert names == ["vdp:depth:a:0", "vdp:depth:a:1", "vdp:depth:a:2"]  # 3 chunks, 4 GPUs: capped
    assert len({tuple(r["gpu_ids"]) for r in first.placement["replicas"]["depth"]}) == 3
    assert set(names) <= named_actors()
    # a second job reuses the loaded actors (same processes) and plans from their measured cost
    assert measured_costs(plans_a)["depth"] > 0
    second = run_job(job(), tmp_path / "2", plans=plans_a)
    assert [r["pid"] for r in second.placement["replicas"]["depth"]] == [r["pid"] for r in first.placement["replicas"]["depth"]]
    assert second.placement["stages"]["depth"]["cost_measured"]
    # another configuration needs 3 GPUs, 1 is free: idle actors of the first one make room
    plans_b = [StagePlan("depth", "b", partial(ChunkAffineStage, 0.3), num_gpus=1.0)]
    third = run_job(job(replicas={"depth": 3}), tmp_path / "3", plans=plans_b)
    assert third.status == "succeeded"
    left = named_actors()
    assert {"vdp:depth:b:0", "vdp:depth:b:1", "vdp:depth:b:2"} <= left
    assert len([n for n in left if n.startswith("vdp:depth:a:")]) == 1


def test_slow_replica_gets_fewer_chunks(tmp_path, fresh_actors):
    plans = [StagePlan("depth", "speed", partial(ReplicaSpeedStage, ":0", 0.3), num_gpus=1.0)]
    report = run_job(job(frames=160, chunk=16, replicas={"depth": 2}), tmp_path, plans=plans)
    chunks = {r["name"]: r["chunks"] for r in report.placement["replicas"]["depth"]}
    assert sum(chunks.values()) == 10
    assert chunks["vdp:depth:speed:0"] < chunks["vdp:depth:speed:1"], chunks


def test_per_stage_resources_are_validated():
    from vdp.errors import SpecError

    with pytest.raises(SpecError) as err:
        JobSpec.parse({"input": "x.mp4", "resources": {"replicas": {"dept": 2, "matte": 0},
                                                        "stage_gpus": {"depth": 1.5}}})
    msg = str(err.value)
    assert "replicas names unknown stages ['dept']" in msg
    assert "stage_gpus['depth'] must be in (0, 1] or a whole number up to 8, got 1.5" in msg
    assert "replicas['matte'] must be between 1 and 1024, got 0" in msg
