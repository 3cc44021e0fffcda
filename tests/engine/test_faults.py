"""Actor faults: a model actor killed (SIGKILL) mid-job is restarted and its chunk re-run;
the output is identical to an uninterrupted run."""
from __future__ import annotations

import json
import os
import signal
import time
from functools import partial

import numpy as np
import pytest
import ray

from vdp.engine.job import run_job
from vdp.engine.plan import StagePlan
from vdp.spec import JobSpec
from tests.conftest import MEDIA
from tests.engine.stages_for_tests import ChunkAffineStage, GrayEmaStage

CLIP = MEDIA / "decord__flipping_a_pancake.mkv"


def spec(chunked: bool) -> JobSpec:
    return JobSpec.parse({
        "input": str(CLIP), "max_frames": 64, "stages": {"depth": {}},
        "outputs": [{"kind": "depth_npz"}, {"kind": "depth_png16"}],
        "resources": {"batch_frames": 8, "replicas": {"depth": 2}, "max_attempts": 2},
        "chunking": {"enabled": chunked, "chunk_frames": 16, "overlap_frames": 8}})


def plans():
    """Two stages, so a kill also has to be survived by the stage after the dead one."""
    return [StagePlan("depth", "kill", partial(ChunkAffineStage, 0.3, 0.1), num_gpus=1.0),
            StagePlan("matte", "kill", partial(GrayEmaStage, 0.5), num_gpus=0.5)]


def pid_of(name: str, timeout_s: float = 60.0) -> int:
    """The actor's process id, once it answers (a killed one may still be restarting after
    the job finished on its other replica)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return ray.get(ray.get_actor(name, namespace="vdp").info.remote(), timeout=timeout_s)["pid"]
        except ray.exceptions.ActorUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.parametrize("chunked", [True, False])
def test_killed_actor_is_restarted_and_output_is_identical(tmp_path, ray_local, chunked):
    reference = run_job(spec(chunked), tmp_path / "ref", plans=plans())
    victim = reference.placement["replicas"]["depth"][0]["name"]
    old_pid = pid_of(victim)
    killed: list[int] = []

    def kill_mid_job(snapshot) -> None:
        done = {p.stage: p.frames_done for p in snapshot}
        if not killed and done["depth"] >= 8 and done["write"] < 40:
            os.kill(old_pid, signal.SIGKILL)
            killed.append(done["write"])

    report = run_job(spec(chunked), tmp_path / "killed", plans=plans(), progress=kill_mid_job)
    assert killed, "the actor was never killed (job too fast?)"
    assert report.status == "succeeded" and report.frames == 64
    retries = report.chunks["retries"]
    assert retries and all("died" in r["reason"] or "restarted" in r["reason"] for r in retries)
    assert pid_of(victim) != old_pid  # Ray restarted it (model reloaded)
    a = np.load(tmp_path / "ref" / "depth.npz")["depth"]
    b = np.load(tmp_path / "killed" / "depth.npz")["depth"]
    assert np.array_equal(a, b)
    pngs = sorted(p.name for p in (tmp_path / "killed" / "depth_png16").iterdir())
    assert pngs == sorted(p.name for p in (tmp_path / "ref" / "depth_png16").iterdir())
    events = [json.loads(line) for line in (tmp_path / "killed" / ".vdp" / "ledger.jsonl").read_text().splitlines()]
    assert any(e["event"] == "retry" for e in events)
    assert not (tmp_path / "killed" / ".vdp" / "chunks").exists()  # scratch removed after success


def test_streams_of_dead_drivers_are_pruned(ray_local, fresh_actors):
    from vdp.engine.actor import StageActor
    from vdp.engine.placement import live_job_ids
    from tests.engine.test_runners import INFO

    actor = StageActor.options(name="vdp:depth:prune:0", namespace="vdp", lifetime="detached",
                               num_gpus=0).remote(plans()[1], 1)
    me = ray.get_runtime_context().get_job_id()
    ray.get([actor.open.remote(f"{me}:a:c0", INFO), actor.open.remote("ffff0000:b:c0", INFO)])
    assert me in live_job_ids()
    assert ray.get(actor.prune.remote(live_job_ids())) == 1
    info = ray.get(actor.info.remote())
    assert info["streams"] == [f"{me}:a:c0"]
    assert info["torch_threads"] == 1  # as asked, not Ray's OMP_NUM_THREADS default
    assert info["thp_alloc"] == "1"  # huge-page allocation reaches the workers


def test_retry_policy_reruns_until_max_attempts(tmp_path):
    from vdp.engine.chunks import Chunk
    from vdp.engine.faults import RetryPolicy
    from vdp.engine.ledger import Ledger
    from vdp.errors import StageError

    ledger = Ledger(tmp_path / "ledger.jsonl")
    policy = RetryPolicy(ledger, max_attempts=2)
    chunk = Chunk(1, 16, 32, 8)
    policy.lost(chunk, 1, "a model actor died (ActorDiedError)")
    assert [e["event"] for e in ledger.events()] == ["retry"]
    with pytest.raises(StageError, match=r"chunk 1 \(frames 8-31\) failed 2 times"):
        policy.lost(chunk, 2, "again")
    assert [r["attempt"] for r in policy.retries] == [1, 2]


def test_classify_tells_a_dead_actor_from_a_stage_error(ray_local):
    from vdp.engine.actor import StageActor
    from vdp.engine.faults import classify
    from vdp.errors import StageError
    from tests.engine.stages_for_tests import FailingStage
    from tests.engine.test_runners import INFO, synthetic_batches

    failing = StageActor.options(num_cpus=0).remote(StagePlan("failing", "cls", partial(FailingStage, 0)), 1)
    opens = [failing.open.remote("s", INFO)]
    ref, _ = failing.process.remote("s", next(synthetic_batches()))
    with pytest.raises(ray.exceptions.RayTaskError) as err:
        ray.get(ref)
    with pytest.raises(StageError, match="failing"):
        classify(err.value, 0, opens)
    ray.kill(failing, no_restart=True)
    died = None
    deadline = time.monotonic() + 30
    while died is None and time.monotonic() < deadline:  # the kill is asynchronous: a call right
        try:                                              # after it may still be served
            ray.get(failing.info.remote())
            time.sleep(0.1)
        except ray.exceptions.RayActorError as exc:
            died = exc
    assert died is not None, "the killed actor kept answering"
    assert classify(died, 0, []).startswith("a model actor died")
