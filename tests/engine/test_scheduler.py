"""ChunkScheduler on synthetic streams: same result as LocalRunner, scene-cut segments included."""
from __future__ import annotations

import time
from functools import partial

import torch

from vdp.engine.assembly import Assembler, FrameReader
from vdp.engine.chunks import plan_chunks
from vdp.engine.ledger import ChunkStore, Ledger
from vdp.engine.local import LocalRunner
from vdp.engine.merge import ChunkMerger
from vdp.engine.placement import acquire_replicas
from vdp.engine.plan import StagePlan
from vdp.engine.progress import ProgressTracker
from vdp.engine.scheduler import ChunkScheduler
from vdp.spec import ChunkingSpec, ResourcesSpec
from vdp.types import FrameBatch
from tests.engine.stages_for_tests import GrayEmaStage, WindowStage
from tests.engine.test_runners import INFO, segmented, synthetic_batches


def plans():
    return [StagePlan("depth", "sched", partial(GrayEmaStage, 0.7), num_gpus=0.5),
            StagePlan("matte", "sched", partial(WindowStage, 5), num_gpus=0.5)]


def run_scheduled(tmp_path, chunks, source, replicas: int = 1) -> tuple[FrameBatch, ProgressTracker]:
    reps, _, _ = acquire_replicas(plans(), ResourcesSpec(replicas={"depth": replicas, "matte": replicas}),
                                  max_replicas=len(chunks), threads=1, timeout_s=120)
    out: list[FrameBatch] = []
    ledger = Ledger(tmp_path / "ledger.jsonl")
    merger = ChunkMerger(chunks, {"depth": "align"}, out.append)
    assembler = Assembler(chunks, merger, ChunkStore(tmp_path / "chunks"), ledger,
                          FrameReader("unused.mp4"), persist=False)
    tracker = ProgressTracker(["decode", "depth", "matte"], frames_total=37)
    ChunkScheduler(plans(), reps, ledger=ledger, max_in_flight=2).run(chunks, {}, assembler, source, INFO, tracker)
    merger.finish()
    return FrameBatch.concat(out), tracker


def test_one_chunk_with_segments_equals_local_runner(tmp_path, ray_local):
    local: list[FrameBatch] = []
    LocalRunner(plans()).run(segmented(synthetic_batches(), 18), INFO, local.append)
    expected = FrameBatch.concat(local)
    chunks = plan_chunks(37, ChunkingSpec())
    got, tracker = run_scheduled(tmp_path, chunks, lambda c: segmented(synthetic_batches(), 18))
    assert got.indices.tolist() == list(range(37))
    for name in expected.layers:
        assert torch.equal(got.layers[name], expected.layers[name]), name
    assert {p.stage: p.frames_done for p in tracker.snapshot()} == {"decode": 37, "depth": 37, "matte": 37}


def test_spilled_chunks_are_replayed_with_their_frames(tmp_path, ray_local):
    """Chunks finishing ahead of the merge (2 replicas) are spilled without their RGB frames and
    replayed with frames decoded again."""
    chunks = plan_chunks(37, ChunkingSpec(enabled=True, chunk_frames=16, overlap_frames=4))

    def source(chunk):
        for b in synthetic_batches():
            keep = (b.indices >= chunk.run_start) & (b.indices < chunk.stop)
            if keep.any():
                if chunk.index == 0:  # the first chunk is slow, so the next one finishes ahead of it
                    time.sleep(0.5)
                idx = keep.nonzero().flatten()
                yield b.slice(int(idx[0]), int(idx[-1]) + 1)

    everything = FrameBatch.concat(list(synthetic_batches()))

    replayed = []

    class Reader(FrameReader):  # the synthetic "video" decoded again
        def read(self, first, stop):
            replayed.append((first, stop))
            return everything.slice(first, stop)

    reps, _, _ = acquire_replicas(plans(), ResourcesSpec(replicas={"depth": 2, "matte": 2}),
                                  max_replicas=3, threads=1, timeout_s=120)
    out: list[FrameBatch] = []
    ledger = Ledger(tmp_path / "ledger.jsonl")
    merger = ChunkMerger(chunks, {}, out.append)
    assembler = Assembler(chunks, merger, ChunkStore(tmp_path / "chunks"), ledger, Reader("x"), persist=False)
    ChunkScheduler(plans(), reps, ledger=ledger, max_in_flight=2).run(chunks, {}, assembler, source, INFO)
    merger.finish()
    got = FrameBatch.concat(out)
    assert got.indices.tolist() == list(range(37)) and torch.equal(got.frames, everything.frames)
    assert sum(r.chunks for rs in reps.values() for r in rs) == 2 * len(chunks)
    assert replayed and all(first >= chunks[1].run_start for first, _ in replayed)
