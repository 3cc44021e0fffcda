"""Output names carry the input's stem (no collisions between videos sharing a folder), and a
job refuses to overwrite its earlier outputs unless asked to."""
from __future__ import annotations

import pytest

from tests.conftest import MEDIA
from vdp.engine.job import run_job
from vdp.naming import OutputExistsError, OutputPathError, input_stem, make_output_folder, named_output
from vdp.spec import JobSpec


def spec_for(video, **extra) -> JobSpec:
    return JobSpec.parse({
        "input": str(video), "max_frames": 3, "output_names": "input",
        "stages": {"depth": {"model": "vits", "input_size": 56, "synthetic_weights": True},
                   "stereo": {"lookahead_frames": 0}},
        "outputs": [{"kind": "depth_npz"}, {"kind": "sbs_full"}, {"kind": "vr180_sbs"}],
        "resources": {"device": "cpu", "batch_frames": 3}, **extra})


def test_stems_are_safe_and_suffixes_iw3_style():
    assert input_stem("/videos/My clip (1).mp4") == "My_clip_1"
    assert input_stem("upload:..") == "upload"
    assert named_output("sbs_full", "clip") == "clip_LRF_Full_SBS.mp4"
    assert named_output("vr180_sbs", "clip") == "clip_180x180_LR.mp4"
    assert named_output("depth_color_mp4", "clip") == "clip_depth.mp4"


def test_two_videos_in_one_folder_do_not_collide_and_reruns_refuse(tmp_path):
    out = tmp_path / "headset"
    a = run_job(spec_for(MEDIA / "sam2__bedroom.mp4"), out, local=True)
    b = run_job(spec_for(MEDIA / "sam2__05_default_juggle.mp4"), out, local=True)
    assert a.outputs == ["sam2__bedroom_depth.npz", "sam2__bedroom_LRF_Full_SBS.mp4",
                         "sam2__bedroom_180x180_LR.mp4"]
    assert b.outputs == ["sam2__05_default_juggle_depth.npz", "sam2__05_default_juggle_LRF_Full_SBS.mp4",
                         "sam2__05_default_juggle_180x180_LR.mp4"]
    assert all((out / n).is_file() for n in a.outputs + b.outputs)
    before = (out / a.outputs[1]).stat().st_mtime_ns
    with pytest.raises(OutputExistsError, match="--overwrite"):
        run_job(spec_for(MEDIA / "sam2__bedroom.mp4"), out, local=True)
    assert (out / a.outputs[1]).stat().st_mtime_ns == before
    again = run_job(spec_for(MEDIA / "sam2__bedroom.mp4", overwrite=True), out, local=True)
    assert again.outputs == a.outputs and (out / a.outputs[1]).stat().st_mtime_ns != before


def test_kind_names_stay_the_default_of_the_spec():
    spec = spec_for(MEDIA / "sam2__bedroom.mp4", output_names="kind")
    assert spec.output_stem() is None


def test_output_folder_is_made_or_refused_with_the_reason(tmp_path):
    make_output_folder(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir()
    make_output_folder(tmp_path / "a" / "b")  # already there: fine
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputPathError, match="is a file"):
        make_output_folder(tmp_path / "f")
    with pytest.raises(OutputPathError, match="cannot create the output folder"):
        make_output_folder(tmp_path / "f" / "sub")
    assert (tmp_path / "f").read_text() == "x"
