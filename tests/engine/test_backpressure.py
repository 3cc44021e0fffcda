"""Backpressure: the object store stays within the job's budget with a slow stage and a slow
writer, and a 1080p clip runs without spilling in the default configuration."""
from __future__ import annotations

import subprocess
import threading
import time
from functools import partial
from pathlib import Path

import pytest

from vdp.engine.assembly import Assembler, FrameReader
from vdp.engine.chunks import plan_chunks
from vdp.engine.cluster import object_store_stats
from vdp.engine.job import run_job
from vdp.engine.ledger import ChunkStore, Ledger
from vdp.engine.merge import ChunkMerger, merge_policies
from vdp.engine.placement import acquire_replicas
from vdp.engine.plan import StagePlan
from vdp.engine.scheduler import ChunkScheduler
from vdp.io import iter_batches, probe
from vdp.spec import ChunkingSpec, JobSpec, ResourcesSpec
from tests.conftest import MEDIA
from tests.engine.stages_for_tests import ChunkAffineStage, GrayEmaStage

CLIP = MEDIA / "decord__flipping_a_pancake.mkv"  # 426x240: 2.4 MB per 8-frame batch


class StoreSampler:
    """Samples the object store's needed bytes (referenced primary copies: what would spill)
    every few milliseconds, in a thread. Released objects Ray caches until it needs the space
    are not counted: they are evicted, never spilled."""

    def __init__(self) -> None:
        self.base = object_store_stats()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, object_store_stats()["primary_bytes"] - self.base["primary_bytes"])
            time.sleep(0.005)

    def __enter__(self) -> "StoreSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.spilled = object_store_stats()["spilled_bytes"] - self.base["spilled_bytes"]


def test_object_store_stays_within_budget_with_slow_stage_and_slow_writer(tmp_path, ray_local):
    budget = 30 * 2**20
    chunks = plan_chunks(96, ChunkingSpec(enabled=True, chunk_frames=24, overlap_frames=8))
    plans = [StagePlan("depth", "bp", partial(ChunkAffineStage, 0.3, 0.05), num_gpus=1.0),
             StagePlan("matte", "bp", partial(GrayEmaStage, 0.5), num_gpus=0.5)]
    replicas, _, _ = acquire_replicas(plans, ResourcesSpec(replicas={"depth": 2}), max_replicas=4,
                                      threads=1, timeout_s=120)
    written = []

    def slow_writer(batch) -> None:
        time.sleep(0.1)
        written.append(len(batch))

    ledger = Ledger(tmp_path / "ledger.jsonl")
    merger = ChunkMerger(chunks, merge_policies("relative"), slow_writer)
    assembler = Assembler(chunks, merger, ChunkStore(tmp_path / "chunks"), ledger,
                          FrameReader(str(CLIP), batch_frames=8), persist=False)
    scheduler = ChunkScheduler(plans, replicas, ledger=ledger, max_in_flight=8, budget_bytes=budget)
    with StoreSampler() as store:
        scheduler.run(chunks, {}, assembler, lambda c: iter_batches(CLIP, batch_frames=8, start_frame=c.run_start,
                                                                    stop_frame=c.stop), probe(CLIP))
    merger.finish()
    assert sum(written) == 96
    assert scheduler.budget.peak <= budget  # what the scheduler admitted
    assert store.peak <= budget, f"object store held {store.peak / 2**20:.1f} MB, budget {budget / 2**20:.0f} MB"
    assert store.spilled == 0
    assert not any((tmp_path / "chunks").iterdir())  # spilled chunk results deleted once merged


@pytest.fixture(scope="module")
def clip_1080p(tmp_path_factory) -> Path:
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    path = tmp_path_factory.mktemp("media") / "testsrc_1080p.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30",
                    "-frames:v", "40", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    str(path)], check=True)
    return path


@pytest.mark.parametrize("chunked", [False, True])
def test_1080p_clip_runs_without_spilling_by_default(tmp_path, ray_local, clip_1080p, chunked):
    spec = JobSpec.parse({"input": str(clip_1080p), "stages": {"depth": {}}, "outputs": [{"kind": "depth_npz"}],
                          "chunking": {"enabled": chunked, "chunk_frames": 16, "overlap_frames": 4}})
    plans = [StagePlan("depth", "1080", partial(GrayEmaStage, 0.5), num_gpus=1.0)]
    with StoreSampler() as store:
        report = run_job(spec, tmp_path, plans=plans)
    assert report.status == "succeeded" and report.frames == 40
    assert store.spilled == 0
    budget = report.placement["object_store"]["budget_bytes"]
    assert store.peak <= budget
    print(f"\n1080p chunked={chunked}: object store peak {store.peak / 2**20:.0f} MB "
          f"(budget {budget / 2**20:.0f} MB), spilled {store.spilled} B")
