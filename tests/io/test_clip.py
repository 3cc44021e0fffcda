"""Trim, target fps and max resolution: a real job runs on exactly the requested part of the
video, at the requested rate and size, with audio cut alike; the outputs keep the input's name."""
from __future__ import annotations

import json

import pytest

from tests.conftest import MEDIA
from vdp.cli.main import main
from vdp.cli.run_args import seconds
from vdp.engine.job import run_job
from vdp.engine.ledger import WORKDIR
from vdp.errors import SpecError
from vdp.io import probe
from vdp.spec import JobSpec

CLIP = MEDIA / "androidx__sample_with_increasing_timestamps_360p.mp4"  # 640x360, 30 fps, AAC


def test_trimmed_resampled_downscaled_job(tmp_path):
    spec = JobSpec.parse({
        "input": str(CLIP), "output_names": "input",
        "clip": {"start_s": 1.0, "end_s": 2.0, "target_fps": 12, "max_res": 160},
        "stages": {"depth": {"input_size": 28, "synthetic_weights": True}},
        "outputs": [{"kind": "depth_color_mp4", "preset": "ultrafast"}, {"kind": "depth_npz"}],
        "resources": {"device": "cpu", "batch_frames": 6}})
    report = run_job(spec, tmp_path, local=True)
    assert report.frames == 12  # one second at 12 fps
    assert (report.input["width"], report.input["height"]) == (160, 90)
    out = probe(tmp_path / "androidx__sample_with_increasing_timestamps_360p_depth.mp4")
    assert out.num_frames == 12 and abs(out.fps - 12) < 1e-6 and (out.width, out.height) == (160, 90)
    inter = probe(tmp_path / WORKDIR / "input" / "androidx__sample_with_increasing_timestamps_360p.mp4")
    assert inter.has_audio and abs(inter.duration_seconds - 1.0) < 0.05
    saved = json.loads((tmp_path / "spec.json").read_text())
    assert saved["input"] == str(CLIP) and saved["clip"]["start_s"] == 1.0  # resumable as given


def test_cli_flags_and_validation(tmp_path, capsys):
    assert seconds("1:02.5") == 62.5 and seconds("0:01:00") == 60 and seconds("7") == 7
    code = main(["run", str(CLIP), "--preset", "depth", "--local", "--synthetic-weights", "--out",
                 str(tmp_path / "o"), "--start", "0:00.5", "--end", "1", "--max-res", "64", "--input-size", "28"])
    assert code == 0
    spec = json.loads((tmp_path / "o" / "spec.json").read_text())
    assert spec["clip"] == {"start_s": 0.5, "end_s": 1.0, "target_fps": None, "max_res": 64}
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["frames"] == 15 and report["input"]["width"] == 64
    with pytest.raises(SpecError, match="end_s"):
        JobSpec.parse({"input": "x.mp4", "clip": {"start_s": 3, "end_s": 2}})
