"""LocalRunner and a chunk run on Ray (the path jobs use) drive the same stage chain to the same
result, in bounded memory."""
from __future__ import annotations

from functools import partial

import pytest
import torch

from vdp.engine.local import LocalRunner
from vdp.engine.plan import StagePlan
from vdp.engine.progress import ProgressTracker
from vdp.errors import StageError
from vdp.types import FrameBatch, VideoInfo
from tests.engine.stages_for_tests import FailingStage, GrayEmaStage, SlowStage, WindowStage

INFO = VideoInfo(path="synthetic", num_frames=37, fps=30.0, duration_seconds=37 / 30,
                 width=24, height=16, codec="none")


def synthetic_batches(n: int = 37, batch: int = 4, log: list | None = None):
    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (n, 3, 16, 24), generator=gen, dtype=torch.uint8)
    for k, start in enumerate(range(0, n, batch)):
        if log is not None:
            log.append(("read", k))
        idx = torch.arange(start, min(n, start + batch))
        yield FrameBatch(frames[idx], idx, idx.double() / 30)


def plans():
    return [StagePlan("ema", "t", partial(GrayEmaStage, 0.7)), StagePlan("window", "t", partial(WindowStage, 5))]


def collect(runner, source, tracker=None):
    out: list[FrameBatch] = []
    runner.run(source, INFO, out.append, tracker)
    return FrameBatch.concat(out)


def test_local_runner_keeps_order_and_every_frame():
    result = collect(LocalRunner(plans()), synthetic_batches())
    assert result.indices.tolist() == list(range(37))
    assert set(result.layers) == {"depth", "window_mean"}


def test_local_result_does_not_depend_on_batch_size():
    a = collect(LocalRunner(plans()), synthetic_batches(batch=1))
    b = collect(LocalRunner(plans()), synthetic_batches(batch=9))
    torch.testing.assert_close(a.layers["depth"], b.layers["depth"], rtol=0, atol=0)
    torch.testing.assert_close(a.layers["window_mean"], b.layers["window_mean"], rtol=0, atol=0)


def test_progress_counts_every_stage():
    seen = []
    tracker = ProgressTracker(["decode", "ema", "window"], frames_total=37, callback=seen.append, interval_s=0)
    collect(LocalRunner(plans()), synthetic_batches(), tracker)
    tracker.finish()
    final = {p.stage: p.frames_done for p in seen[-1]}
    assert final == {"decode": 37, "ema": 37, "window": 37}


def test_local_runner_names_failing_stage_and_frames():
    runner = LocalRunner([StagePlan("failing", "t", partial(FailingStage, 10))])
    with pytest.raises(StageError, match=r"stage 'failing' failed on frames 8-11: RuntimeError"):
        collect(runner, synthetic_batches())


def on_ray(tmp_path, plan_list, source, *, max_in_flight: int = 3, tracker=None, sink=None,
           prefetch: int = 2, frames: int = 37):
    """Run `source` as one chunk on the ChunkScheduler (one replica per stage), as jobs do."""
    from vdp.engine.assembly import Assembler, FrameReader
    from vdp.engine.chunks import plan_chunks
    from vdp.engine.ledger import ChunkStore, Ledger
    from vdp.engine.merge import ChunkMerger
    from vdp.engine.placement import acquire_replicas
    from vdp.engine.scheduler import ChunkScheduler
    from vdp.spec import ChunkingSpec, ResourcesSpec

    reps, _, _ = acquire_replicas(plan_list, ResourcesSpec(), max_replicas=1, threads=1, timeout_s=120)
    out: list[FrameBatch] = []
    chunks = plan_chunks(frames, ChunkingSpec())
    ledger = Ledger(tmp_path / "ledger.jsonl")
    merger = ChunkMerger(chunks, {}, sink or out.append)
    assembler = Assembler(chunks, merger, ChunkStore(tmp_path / "chunks"), ledger,
                          FrameReader("unused.mp4"), persist=False)
    scheduler = ChunkScheduler(plan_list, reps, ledger=ledger, max_in_flight=max_in_flight,
                               prefetch=prefetch)
    reports = scheduler.run(chunks, {}, assembler, lambda c: source, INFO, tracker)
    merger.finish()
    return (FrameBatch.concat(out) if out else None), scheduler, reports


def test_ray_chunk_run_equals_local_runner(tmp_path, ray_local):
    local = collect(LocalRunner(plans()), synthetic_batches())
    tracker = ProgressTracker(["decode", "ema", "window"], frames_total=37)
    remote, _, _ = on_ray(tmp_path, plans(), synthetic_batches(), tracker=tracker)
    assert remote.indices.tolist() == local.indices.tolist()
    assert torch.equal(remote.frames, local.frames)
    for name in local.layers:
        assert torch.equal(remote.layers[name], local.layers[name]), name
    assert {p.stage: p.frames_done for p in tracker.snapshot()} == {"decode": 37, "ema": 37, "window": 37}


def test_ray_chunk_run_bounds_batches_in_flight(tmp_path, ray_local):
    log: list = []
    limit, prefetch = 2, 1
    written = 0

    def sink(b: FrameBatch) -> None:
        nonlocal written
        log.append(("write", written))
        written += 1

    _, scheduler, _ = on_ray(tmp_path, [StagePlan("slow", "bound", partial(SlowStage, 0.05))],
                             synthetic_batches(n=40, batch=2, log=log), max_in_flight=limit,
                             sink=sink, prefetch=prefetch, frames=40)
    assert scheduler.peak_in_flight == limit
    # besides the batches in flight, only the prefetch queue and the one batch the decode
    # thread holds (waiting for room in it) may have been read ahead of what was written
    ahead = limit + prefetch + 1
    for k in range(written - ahead):
        assert log.index(("read", k + ahead)) > log.index(("write", k)), f"batch {k + ahead} read before {k} written"


def test_ray_chunk_run_reports_stage_failure(tmp_path, ray_local):
    with pytest.raises(StageError, match="failing"):
        on_ray(tmp_path, [StagePlan("failing", "ray", partial(FailingStage, 10))], synthetic_batches())


def segmented(batches, cut_at: int):
    """Split the stream at frame `cut_at` and flag the batch that starts the new segment."""
    for b in batches:
        idx = b.indices.tolist()
        if cut_at in idx and idx[0] != cut_at:
            k = idx.index(cut_at)
            yield b.slice(0, k)
            rest = b.slice(k)
            rest.starts_segment = True
            yield rest
        else:
            if idx[0] == cut_at:
                b.starts_segment = True
            yield b


def test_segment_start_restarts_stage_state():
    whole = collect(LocalRunner(plans()), segmented(synthetic_batches(), 18))
    assert whole.indices.tolist() == list(range(37))
    # the second segment must equal a fresh run that starts at frame 18
    fresh = collect(LocalRunner(plans()), (b for b in synthetic_batches(batch=1) if int(b.indices[0]) >= 18))
    torch.testing.assert_close(whole.layers["depth"][18:], fresh.layers["depth"], rtol=0, atol=0)
    torch.testing.assert_close(whole.layers["window_mean"][18:], fresh.layers["window_mean"], rtol=0, atol=0)
    # and differs from the unsegmented run (the EMA would otherwise carry across the cut)
    plain = collect(LocalRunner(plans()), synthetic_batches())
    assert not torch.equal(plain.layers["depth"][18:], whole.layers["depth"][18:])


def test_ray_chunk_run_segments_equal_local(tmp_path, ray_local):
    local = collect(LocalRunner(plans()), segmented(synthetic_batches(), 18))
    remote, _, _ = on_ray(tmp_path, plans(), segmented(synthetic_batches(), 18), max_in_flight=2)
    assert remote.indices.tolist() == list(range(37))
    for name in local.layers:
        assert torch.equal(remote.layers[name], local.layers[name]), name


def test_split_at_cuts_never_straddles_and_flags_starts():
    from vdp.engine.segments import split_at_cuts

    pieces = list(split_at_cuts(synthetic_batches(n=20, batch=6), lambda b: [0, 5, 6, 13]))
    assert [p.indices.tolist() for p in pieces] == [
        [0, 1, 2, 3, 4], [5], [6, 7, 8, 9, 10, 11], [12], [13, 14, 15, 16, 17], [18, 19]]
    assert [p.starts_segment for p in pieces] == [False, True, True, False, True, False]
