"""CPU-only Ray runs: a node's stage actors take turns with its cores, one inter-op thread each,
the driver writes at idle priority, and report.json records the allotment."""
from __future__ import annotations

import json
import os
from functools import partial

import ray

from vdp.engine.cluster import NAMESPACE
from vdp.engine.cores import CpuTurn, actor_threads, node_cores
from vdp.engine.job import run_job
from vdp.engine.plan import StagePlan
from vdp.spec import JobSpec
from tests.conftest import MEDIA
from tests.engine.stages_for_tests import ChunkAffineStage, SlowStage

CLIP = MEDIA / "decord__flipping_a_pancake.mkv"


def cpu_job(**resources) -> JobSpec:
    return JobSpec.parse({"input": str(CLIP), "max_frames": 32, "stages": {"depth": {}},
                          "outputs": [{"kind": "depth_npz"}],
                          "resources": {"device": "cpu", "batch_frames": 4, **resources},
                          "chunking": {"enabled": True, "chunk_frames": 16, "overlap_frames": 4}})


def test_thread_counts_never_exceed_the_cores():
    assert actor_threads(None, 2) == 2
    assert actor_threads(8, 2) == 2 and actor_threads(1, 2) == 1
    assert node_cores(1.0) == 1
    assert node_cores() == len(os.sched_getaffinity(0))


def test_turns_exclude_each_other_across_processes(tmp_path):
    a, b = CpuTurn("test-" + tmp_path.name), CpuTurn("test-" + tmp_path.name)
    with a:
        fd = os.open(b.path, os.O_RDWR)
        import fcntl

        try:  # another open file description cannot take the lock while `a` holds it
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            raise AssertionError("the turn was not exclusive")
        except BlockingIOError:
            pass
        finally:
            os.close(fd)
    with b:
        pass
    assert a.turns == b.turns == 1 and a.intervals[0][1] <= b.intervals[0][0]


def test_cpu_actors_take_turns_and_report_records_the_allotment(tmp_path, fresh_actors):
    # both stages sleep inside their calls: without turns, depth's next batch would overlap
    # matte's current one (they are pipelined on separate actors)
    plans = [StagePlan("depth", "cores", partial(ChunkAffineStage, 0.3, 0.05)),
             StagePlan("matte", "cores", partial(SlowStage, 0.05))]
    report = run_job(cpu_job(), tmp_path, plans=plans)
    assert report.status == "succeeded" and report.frames == 32
    saved = json.loads((tmp_path / "report.json").read_text())["placement"]
    assert saved["gpus"] is False
    cpu = saved["cpu"]
    assert cpu["policy"] == "turns" and cpu["interop_threads"] == 1
    cores = node_cores(ray.cluster_resources()["CPU"])
    actors = cpu["actors"]
    assert set(actors) == {"vdp:depth:cores:0", "vdp:matte:cores:0"}
    assert len({a["node_id"] for a in actors.values()}) == 1  # one node: they share its cores
    for a in actors.values():
        assert a["turns"] and a["interop_threads"] == 1 and 1 <= a["torch_threads"] <= cores
    # threads computing at any moment: one actor's, at most the node's cores
    handles = [ray.get_actor(n, namespace=NAMESPACE) for n in actors]
    intervals = sorted(iv for h in handles for iv in ray.get(h.turn_intervals.remote()))
    assert len(intervals) >= 2 * (32 // 4)
    for (_, end), (start, _) in zip(intervals, intervals[1:]):
        assert start >= end, "two actors of one node computed at once"
    if os.name == "posix" and hasattr(os, "SCHED_IDLE"):
        assert cpu["driver_idle_priority"] is True
        # the depth actor decodes its chunks in the time the models leave idle
        runs = report.chunks["runs"]
        assert runs and all(r["decode"]["on"] == "worker" and r["decode"]["priority"] == "idle" for r in runs)


def test_resources_threads_caps_each_actor(tmp_path, fresh_actors):
    plans = [StagePlan("depth", "one", partial(ChunkAffineStage, 0.3))]
    report = run_job(cpu_job(threads=1), tmp_path, plans=plans)
    actors = report.placement["cpu"]["actors"]
    assert [a["torch_threads"] for a in actors.values()] == [1]
    assert report.placement["cpu"]["torch_threads"] == 1
