"""A job without outputs on Ray: every stage runs on every frame, but the last stage drops its
results where it makes them (no object store traffic, no writer), and the report still counts
every frame."""
from __future__ import annotations

import json
from functools import partial

import ray

from vdp.engine.job import run_job
from vdp.engine.placement import WRITER_PREFIX
from vdp.engine.plan import StagePlan
from vdp.spec import JobSpec
from tests.conftest import MEDIA
from tests.engine.stages_for_tests import ChunkAffineStage, CountingStage
from tests.engine.test_runners import INFO, synthetic_batches

CLIP = MEDIA / "decord__flipping_a_pancake.mkv"  # 426x240
FRAMES = 40


def test_an_actor_opened_without_results_returns_only_the_facts(ray_local):
    from vdp.engine.actor import StageActor

    actor = StageActor.options(num_cpus=0).remote(StagePlan("counting", "no-results", CountingStage), 1)
    ray.get([actor.open.remote("kept", INFO), actor.open.remote("dropped", INFO, None, False, True)])
    batch = next(synthetic_batches())
    kept, kept_meta = ray.get(list(actor.process.remote("kept", batch)))
    dropped, dropped_meta = ray.get(list(actor.process.remote("dropped", batch)))
    assert kept is not None and len(kept) == len(batch)
    assert dropped is None
    assert dropped_meta["frames"] == kept_meta["frames"] == len(batch)  # the progress still travels
    ray.kill(actor)


def test_a_chunked_job_without_outputs_runs_every_frame_and_writes_nothing(tmp_path, ray_local, fresh_actors):
    spec = JobSpec.parse({"input": str(CLIP), "max_frames": FRAMES, "stages": {"depth": {}}, "outputs": [],
                          "resources": {"batch_frames": 8, "replicas": {"depth": 2}},
                          "chunking": {"enabled": True, "chunk_frames": 16, "overlap_frames": 8}})
    plan = StagePlan("depth", "no-outputs", partial(ChunkAffineStage, 0.3, 0.0), num_gpus=1.0)
    report = run_job(spec, tmp_path, plans=[plan])
    assert report.status == "succeeded" and report.frames == FRAMES
    assert report.placement["writing"]["on"] == "nowhere"
    assert report.chunks["seams"] == [] and report.outputs == []
    runs = report.chunks["runs"]
    assert sorted(r["chunk"] for r in runs) == [0, 1, 2]
    # every chunk ran all of its frames, overlap included, through the stage
    assert report.stages["depth"]["frames_done"] == sum(c["stop"] - c["run_start"] for c in report.chunks["plan"])
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["report.json", "spec.json"]
    named = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)]
    assert not [n for n in named if n.startswith(WRITER_PREFIX)]  # no writer was started for it
    events = [json.loads(line) for line in (tmp_path / ".vdp" / "ledger.jsonl").read_text().splitlines()]
    assert sorted(e["chunk"] for e in events if e["event"] == "done") == [0, 1, 2]
