"""`vdp run FOLDER|GLOB`: one job, report and input-named outputs per video plus a summary;
the stereo and encoding flags reach the spec (and the spec's ranges reject bad values)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from vdp.cli.main import main
from vdp.io import probe
from vdp.io._ffmpeg import run_ffmpeg

SPEC = """
stages:
  depth: {model: vits, input_size: 518}
  stereo: {lookahead_frames: 0}
resources: {device: cpu, batch_frames: 2}
outputs: [{kind: sbs_half}, {kind: depth_npz}]
"""


def make_clips(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        run_ffmpeg(["-y", "-f", "lavfi", "-i", f"testsrc=size=64x48:rate=10,hue=h={i * 90}",
                    "-frames:v", "3", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(folder / name)],
                   timeout_s=60, what="test clip")


@pytest.fixture()
def spec_file(tmp_path) -> Path:
    p = tmp_path / "job.yaml"
    p.write_text(SPEC)
    return p


def test_a_folder_of_three_gives_three_reports_and_a_summary(tmp_path, spec_file):
    make_clips(tmp_path / "in", ["a.mp4", "b.mkv", "c.mov"])
    (tmp_path / "in" / "notes.txt").write_text("not a video")
    out = tmp_path / "out"
    code = main(["run", str(tmp_path / "in"), "--spec", str(spec_file), "--local", "--out", str(out),
                 "--synthetic-weights", "--max-frames", "2", "--divergence", "3.5", "--convergence", "0.2",
                 "--ipd-offset", "-2.5", "--input-size", "56", "--crf", "30", "--fov", "80"])
    assert code == 0
    summary = json.loads((out / "batch_summary.json").read_text())
    assert (summary["videos"], summary["succeeded"], summary["failed"]) == (3, 3, 0)
    for stem in ("a", "b", "c"):
        report = json.loads((out / stem / "report.json").read_text())
        assert report["status"] == "succeeded" and report["frames"] == 2
        assert report["outputs"] == [f"{stem}_LR_Half_SBS.mp4", f"{stem}_depth.npz"]
        assert probe(out / stem / f"{stem}_LR_Half_SBS.mp4").num_frames == 2
        spec = json.loads((out / stem / "spec.json").read_text())
        assert spec["stages"]["stereo"]["divergence"] == 3.5
        assert spec["stages"]["stereo"]["convergence"] == 0.2
        assert spec["stages"]["stereo"]["ipd_offset"] == -2.5
        assert spec["stages"]["depth"]["input_size"] == 56
        assert {o["crf"] for o in spec["outputs"]} == {30}
        assert spec["camera"]["hfov_deg"] == 80 and spec["output_names"] == "input"
    assert [j["out_dir"] for j in summary["jobs"]] == ["a", "b", "c"]


def test_a_glob_and_a_rerun_that_refuses(tmp_path, spec_file, capsys):
    make_clips(tmp_path / "in", ["x.mp4", "y.mp4", "skip.mkv"])
    out = tmp_path / "out"
    args = ["run", str(tmp_path / "in" / "*.mp4"), "--spec", str(spec_file), "--local", "--out", str(out),
            "--synthetic-weights", "--max-frames", "1", "--input-size", "28", "--encoder", "x265"]
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["batch_summary.json", "x", "y"]
    assert probe(out / "x" / "x_LR_Half_SBS.mp4").codec == "hevc"  # --encoder reached the outputs
    assert main(args) == 1  # every output exists: each job refuses, the summary says why
    summary = json.loads((out / "batch_summary.json").read_text())
    assert summary["failed"] == 2 and all("--overwrite" in j["error"] for j in summary["jobs"])
    assert main([*args, "--overwrite"]) == 0


def test_a_batch_into_a_file_is_refused_before_any_job(tmp_path, spec_file, capsys):
    make_clips(tmp_path / "in", ["x.mp4"])
    (tmp_path / "out").write_text("a file")
    assert main(["run", str(tmp_path / "in"), "--spec", str(spec_file), "--local", "--out",
                 str(tmp_path / "out"), "--synthetic-weights", "--max-frames", "1"]) == 2
    assert "is a file" in capsys.readouterr().err
    assert (tmp_path / "out").read_text() == "a file"


@pytest.mark.parametrize("flags,field", [
    (["--divergence", "50"], "stages.stereo.divergence"),
    (["--convergence", "-1"], "stages.stereo.convergence"),
    (["--ipd-offset", "25"], "stages.stereo.ipd_offset"),
    (["--crf", "99"], "outputs.0.crf"),
    (["--input-size", "9999"], "stages.depth.input_size"),
])
def test_out_of_range_flags_fail_with_the_spec_field(tmp_path, spec_file, capsys, flags, field):
    make_clips(tmp_path, ["v.mp4"])
    assert main(["run", str(tmp_path / "v.mp4"), "--spec", str(spec_file), "--out", str(tmp_path / "o"),
                 *flags]) == 2
    assert field in capsys.readouterr().err


def test_stereo_flag_without_a_stereo_stage_is_refused(tmp_path, capsys):
    make_clips(tmp_path, ["v.mp4"])
    assert main(["run", str(tmp_path / "v.mp4"), "--preset", "depth", "--divergence", "2",
                 "--out", str(tmp_path / "o")]) == 2
    assert "no stereo stage" in capsys.readouterr().err


def test_an_empty_folder_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["run", str(tmp_path / "empty"), "--preset", "depth"]) == 2
    assert "matches no video" in capsys.readouterr().err
