"""Per-stage progress: each stage's own speed (busy time) beside the job's pace (wall time)."""
from __future__ import annotations

from vdp.engine.progress import ProgressTracker, StageProgress


def test_busy_fps_is_the_stage_own_speed_and_fps_the_wall_pace():
    p = StageProgress("depth", frames_done=30, frames_total=60, busy_seconds=2.0, elapsed_seconds=10.0)
    assert p.busy_fps == 15.0 and p.fps == 3.0
    assert p.eta_seconds == 10.0  # the ETA follows the wall pace, not the stage's own speed
    assert p.to_dict()["busy_fps"] == 15.0 and p.to_dict()["fps"] == 3.0
    assert StageProgress("matte").busy_fps == 0.0  # nothing done yet: no division by zero


def test_tracker_reports_different_own_speeds_for_stages_that_share_a_pace():
    tracker = ProgressTracker(["depth", "matte"], frames_total=8)
    tracker.add("depth", 8, 4.0)
    tracker.add("matte", 8, 1.0)
    stages = {p.stage: p for p in tracker.snapshot()}
    assert stages["depth"].busy_fps == 2.0 and stages["matte"].busy_fps == 8.0
