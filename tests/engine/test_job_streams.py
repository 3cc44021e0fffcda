"""A job on a file with two video streams and two audio tracks: the chosen ones are decoded,
muxed (exactly one audio track) and named in report.json."""
from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from vdp.engine.job import run_job
from vdp.engine.plan import StagePlan
from vdp.io import iter_batches
from vdp.io.streams import StreamSelectionError
from vdp.spec import JobSpec
from tests.engine.stages_for_tests import GrayEmaStage
from tests.io.test_streams import RED, TONES, audio_tracks, dominant_hz, make_two_stream_file


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_two_stream_file(tmp_path_factory.mktemp("streams") / "two.mp4")


def rgbd_job(path: Path, out: Path, streams: dict | None = None, *, local: bool = True, **extra) -> dict:
    spec = JobSpec.parse({"input": str(path), "stages": {"depth": {"model": "vits"}},
                          "outputs": [{"kind": "rgbd", "crf": 0}], "resources": {"batch_frames": 8},
                          "streams": streams, **extra})
    run_job(spec, out, local=local, plans=[StagePlan("depth", "ema", partial(GrayEmaStage, 0.8))])
    return json.loads((out / "report.json").read_text())


def colour_half(out: Path) -> np.ndarray:
    """The colour (left) half of every RGBD frame, RGB [T,H,W,3]."""
    frames = np.concatenate([b.frames.numpy() for b in iter_batches(out / "RGBD.mp4", batch_frames=25)])
    return frames[..., : frames.shape[-1] // 2].transpose(0, 2, 3, 1)


def test_default_streams_are_ffmpegs_and_named_in_the_report(two: Path, tmp_path: Path) -> None:
    report = rgbd_job(two, tmp_path)
    used = report["input"]["streams_used"]
    assert used["video"]["position"] == 0 and used["video"]["index"] == 0
    assert used["audio"]["position"] == 0 and used["audio"]["language"] == "eng"
    assert used["audio"]["codec"] == "aac"
    left = colour_half(tmp_path).astype(float)
    assert np.abs(left.reshape(-1, 3).mean(0) - RED).max() > 60  # the test pattern, not red
    tracks = audio_tracks(tmp_path / "RGBD.mp4")
    assert len(tracks) == 1 and tracks[0].language == "eng"
    assert abs(dominant_hz(tmp_path / "RGBD.mp4") - TONES[0]) < 5


@pytest.mark.parametrize("local", [True, False])
def test_chosen_streams_reach_the_outputs_and_the_report(two: Path, tmp_path: Path, local: bool,
                                                         request: pytest.FixtureRequest) -> None:
    if not local:  # the actors decode the chunks themselves (worker decode)
        request.getfixturevalue("ray_local")
    report = rgbd_job(two, tmp_path, {"video": 1, "audio": 1}, local=local)
    used = report["input"]["streams_used"]
    assert (used["video"]["position"], used["video"]["index"]) == (1, 1)
    assert (used["audio"]["position"], used["audio"]["language"]) == (1, "fra")
    assert report["input"]["video_stream"] == 1 and report["input"]["audio_stream"] == used["audio"]["index"]
    left = colour_half(tmp_path).astype(float)
    assert np.abs(left.reshape(-1, 3).mean(0) - RED).max() < 8  # the solid red stream
    tracks = audio_tracks(tmp_path / "RGBD.mp4")
    assert len(tracks) == 1 and tracks[0].language == "fra"
    assert abs(dominant_hz(tmp_path / "RGBD.mp4") - TONES[1]) < 5


def test_no_audio_gives_a_silent_output(two: Path, tmp_path: Path) -> None:
    report = rgbd_job(two, tmp_path, {"audio": "none"})
    assert report["input"]["streams_used"]["audio"] is None
    assert audio_tracks(tmp_path / "RGBD.mp4") == []


def test_clip_keeps_the_chosen_streams(two: Path, tmp_path: Path) -> None:
    report = rgbd_job(two, tmp_path, {"video": 1, "audio": 1}, clip={"start_s": 0.2})
    assert report["input"]["streams_used"]["audio"]["language"] == "fra"
    assert report["input"]["streams_used"]["video"]["position"] == 1
    left = colour_half(tmp_path).astype(float)
    assert np.abs(left.reshape(-1, 3).mean(0) - RED).max() < 8
    assert abs(dominant_hz(tmp_path / "RGBD.mp4") - TONES[1]) < 5


def test_a_missing_stream_fails_before_running_and_lists_the_streams(two: Path, tmp_path: Path) -> None:
    with pytest.raises(StreamSelectionError, match=r"streams.video: no video stream 3; .*video streams \[0: "):
        rgbd_job(two, tmp_path, {"video": 3})
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "failed" and "StreamSelectionError" in report["error"]
    assert not (tmp_path / "RGBD.mp4").exists()
