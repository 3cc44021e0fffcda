"""ReplicaPool: least-loaded choice per stage, suspects after a fault, a stage left without replicas."""
from __future__ import annotations

from functools import partial

import pytest

from vdp.engine.placement import acquire_replicas
from vdp.engine.plan import StagePlan
from vdp.engine.replica_pool import ReplicaPool
from vdp.errors import StageError
from vdp.spec import ResourcesSpec
from tests.engine.stages_for_tests import GrayEmaStage


def plans():
    return [StagePlan("depth", "pool", partial(GrayEmaStage, 0.5), num_gpus=0.5),
            StagePlan("matte", "pool", partial(GrayEmaStage, 0.7), num_gpus=0.5)]


@pytest.fixture
def pool(fresh_actors) -> ReplicaPool:
    reps, _, _ = acquire_replicas(plans(), ResourcesSpec(replicas={"depth": 2, "matte": 1}),
                                  max_replicas=4, threads=1, timeout_s=120)
    return ReplicaPool(plans(), reps)


def test_takes_the_least_loaded_replica_of_each_stage(pool):
    assert pool.concurrency == 2
    first = pool.take()
    second = pool.take()
    assert [r.stage for r in first] == ["depth", "matte"]
    assert first[0] is not second[0]  # the idle depth replica
    assert first[1] is second[1] and first[1].active == 2  # matte has one replica: it runs both
    pool.release(first, finished=True)
    assert first[0].active == 0 and first[0].chunks == 1
    assert pool.take()[0] is first[0]


def test_a_lost_runs_replicas_wait_for_their_probe(pool):
    reps = pool.take()
    pool.release(reps, finished=False)
    assert all(r.probe is not None and not r.available for r in reps)
    assert pool.take() is None  # matte's only replica is a suspect: wait
    deadline = 100
    while any(r.probe is not None for r in reps) and deadline:
        pool.wait_probes(0.5)
        pool.check_probes()
        deadline -= 1
    assert all(r.available and r.info.get("pid") for r in reps)
    assert pool.take() is not None


def test_a_stage_without_live_replicas_fails_the_job(pool):
    for r in pool.replicas["matte"]:
        r.dead = True
    with pytest.raises(StageError, match="matte"):
        pool.take()


def test_every_stage_needs_a_replica():
    with pytest.raises(ValueError, match="matte"):
        ReplicaPool(plans(), {"depth": []})
