"""The stage-chain protocol: segments at cuts, flush order, reports, progress; one behaviour in
process and on Ray (a chunk run on the ChunkScheduler)."""
from __future__ import annotations

from functools import partial

import pytest
import ray
import torch

from vdp.engine.chain import LOST_REPORT, Chain, ChainReports, ReportLostError, run_stream
from vdp.engine.local import LocalRunner
from vdp.engine.plan import StagePlan
from vdp.engine.progress import ProgressTracker
from vdp.stages.base import StageReport
from vdp.types import FrameBatch
from tests.engine.stages_for_tests import CountingStage, GrayEmaStage, WindowStage
from tests.engine.test_runners import INFO, collect, on_ray, segmented, synthetic_batches


class Recorder:
    """A transport that records the calls the protocol makes (what is decided, not how)."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def open(self) -> None:
        self.calls.append(("open",))

    def process(self, batch: FrameBatch) -> None:
        self.calls.append(("process", int(batch.indices[0])))

    def flush(self, stage: int) -> None:
        self.calls.append(("flush", stage))

    def close(self) -> None:
        self.calls.append(("close",))


def test_a_cut_flushes_every_stage_in_order_closes_and_reopens():
    rec = Recorder()
    run_stream(Chain(["a", "b", "c"], rec), segmented(synthetic_batches(n=12, batch=4), 8))
    segment = [("flush", 0), ("flush", 1), ("flush", 2), ("close",)]
    assert rec.calls == [("open",), ("process", 0), ("process", 4), *segment,
                         ("open",), ("process", 8), *segment]


def test_a_first_batch_that_starts_a_segment_does_not_cut():
    rec = Recorder()
    run_stream(Chain(["a"], rec), segmented(synthetic_batches(n=8, batch=4), 0))
    assert rec.calls == [("open",), ("process", 0), ("process", 4), ("flush", 0), ("close",)]


def test_an_empty_stream_still_opens_flushes_and_closes():
    rec = Recorder()
    run_stream(Chain(["a", "b"], rec), iter(()))
    assert rec.calls == [("open",), ("flush", 0), ("flush", 1), ("close",)]


def test_decode_is_counted_with_the_wait_for_each_batch():
    tracker = ProgressTracker(["decode", "a"])

    def slow_source():
        for b in synthetic_batches(n=8, batch=4):
            torch.ones(200, 200) @ torch.ones(200, 200)
            yield b

    run_stream(Chain(["a"], Recorder(), tracker), slow_source())
    assert tracker.progress["decode"].frames_done == 8
    assert tracker.progress["decode"].busy_seconds > 0


def test_what_a_stage_flushes_passes_through_the_stages_after_it():
    # the window stage holds back a partial window until its flush; the EMA after it must
    # still see (and add its layer to) those frames
    out = collect(LocalRunner([StagePlan("window", "t", partial(WindowStage, 5)),
                               StagePlan("ema", "t", partial(GrayEmaStage, 0.7))]), synthetic_batches())
    assert out.indices.tolist() == list(range(37))
    assert set(out.layers) == {"window_mean", "depth"}
    assert len(out.layers["depth"]) == 37


def test_reports_merge_in_call_order_and_a_lost_one_becomes_a_warning():
    reports = ChainReports(["a", "b"])
    reports.add("a", StageReport(warnings=["one"]))
    reports.gather("a", lambda: StageReport(fallbacks=[{"window": 1}], warnings=["two"]))

    def lost() -> StageReport:
        raise ReportLostError("actor died")

    reports.gather("b", lost)
    assert reports.reports["a"] == StageReport(fallbacks=[{"window": 1}], warnings=["one", "two"])
    assert reports.reports["b"].warnings == [LOST_REPORT.format(name="b")]


def counting_plans():
    return [StagePlan("ema", "chain", partial(GrayEmaStage, 0.7)),
            StagePlan("counting", "chain", CountingStage)]


def test_segment_reports_and_progress_are_the_same_in_process_and_on_ray(tmp_path, ray_local):
    names = ["decode", "ema", "counting"]
    local_tracker, ray_tracker = ProgressTracker(names), ProgressTracker(names)
    out: list[FrameBatch] = []
    local_reports = LocalRunner(counting_plans()).run(segmented(synthetic_batches(), 18), INFO,
                                                      out.append, local_tracker)
    remote, _, ray_reports = on_ray(tmp_path, counting_plans(), segmented(synthetic_batches(), 18),
                                    tracker=ray_tracker)
    expected = ["flushed after 18 frames", "flushed after 19 frames"]
    assert local_reports["counting"].warnings == ray_reports["counting"].warnings == expected
    done = {n: p.frames_done for n, p in local_tracker.progress.items()}
    assert done == {n: p.frames_done for n, p in ray_tracker.progress.items()} == dict.fromkeys(names, 37)
    assert torch.equal(remote.layers["depth"], FrameBatch.concat(out).layers["depth"])
    assert all(ray_tracker.progress[n].busy_seconds > 0 for n in names)  # decode timed on Ray too


def wait_until_dead(actor, timeout_s: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            ray.get(actor.info.remote(), timeout=timeout_s)
        except ray.exceptions.RayActorError:
            return
        time.sleep(0.05)
    raise AssertionError(f"actor still answering {timeout_s:.0f} s after ray.kill")


def test_a_dead_actors_report_is_the_same_warning_as_in_process(ray_local):
    from vdp.engine.actor import StageActor
    from vdp.engine.ray_errors import get_report

    plan = StagePlan("counting", "dead", CountingStage)
    actor = StageActor.options(num_cpus=0).remote(plan, 1)
    ray.get(actor.open.remote("s", INFO))
    ray.kill(actor, no_restart=True)
    wait_until_dead(actor)  # the kill is asynchronous: a call sent at once may still be answered
    reports = ChainReports(["counting"])
    reports.gather("counting", lambda: get_report(actor.close.remote("s"), timeout_s=30))
    in_process = ChainReports(["counting"])
    in_process.lost("counting")
    assert reports.reports == in_process.reports
    assert reports.reports["counting"].warnings == [LOST_REPORT.format(name="counting")]


def test_a_stage_error_inside_an_actor_reaches_the_caller_as_itself(ray_local):
    from vdp.engine.ray_errors import actor_died, to_vdp_error
    from vdp.errors import StageError
    from tests.engine.stages_for_tests import FailingStage
    from vdp.engine.actor import StageActor

    actor = StageActor.options(num_cpus=0).remote(StagePlan("failing", "err", partial(FailingStage, 0)), 1)
    ray.get(actor.open.remote("s", INFO))
    batch = next(synthetic_batches())
    ref, _ = actor.process.remote("s", batch)
    with pytest.raises(ray.exceptions.RayTaskError) as info:
        ray.get(ref)
    err = to_vdp_error(info.value, "processing")
    assert isinstance(err, StageError) and "failing" in str(err)
    assert not actor_died(info.value)
    ray.kill(actor, no_restart=True)
