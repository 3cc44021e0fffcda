"""The `vdp` command: probe, presets and clear errors (no tracebacks) for bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vdp.cli.main import main
from tests.conftest import MEDIA


def test_presets_lists_every_config(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in ("depth", "metric-depth", "depth+refine", "matte", "depth+matte"):
        assert f"\n{name} " in f"\n{out}"


def test_presets_catalog_lists_stages_and_output_kinds(capsys):
    assert main(["presets", "--catalog"]) == 0
    out = capsys.readouterr().out
    assert "  stereo       needs depth; produces stereo" in out
    assert "  foreground_webm    foreground.webm" in out


def test_version(capsys):
    from vdp import __version__

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"vdp {__version__}\n"


def test_probe_json_shows_display_orientation(capsys):
    assert main(["probe", str(MEDIA / "decord__video_90.mov"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["width"], info["height"]) == (320, 568)
    assert info["num_frames"] == 3


def test_unknown_preset_is_a_clear_error(capsys, tmp_path):
    code = main(["run", str(MEDIA / "av1_video.mkv"), "--preset", "nope", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown preset 'nope'" in err and "depth" in err and "Traceback" not in err


def test_invalid_spec_file_names_the_field(capsys, tmp_path):
    spec = tmp_path / "job.yaml"
    spec.write_text("stages:\n  depth: {model: vitx}\noutputs: [{kind: depth_npz}]\n")
    assert main(["run", str(MEDIA / "av1_video.mkv"), "--spec", str(spec), "--out", str(tmp_path)]) == 2
    assert "stages.depth.model" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_an_unusable_out_folder_exits_2_naming_it(tmp_path, capsys, where):
    (tmp_path / "taken").write_text("not a folder")
    out = tmp_path / "taken" if where == "file" else tmp_path / "taken" / "out"
    assert main(["run", str(MEDIA / "sam2__05_default_juggle.mp4"), "--preset", "depth", "--local",
                 "--synthetic-weights", "--max-frames", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and ("is a file" in err or "cannot create the output folder" in err)
    assert (tmp_path / "taken").read_text() == "not a folder"  # nothing else touched


def test_broken_video_exits_1_without_traceback(tmp_path):
    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"")
    proc = subprocess.run([sys.executable, "-m", "vdp.cli.main", "run", str(bad), "--preset", "depth",
                           "--local", "--out", str(tmp_path / "out")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    assert "DecodeError" in proc.stderr and "Traceback" not in proc.stderr
