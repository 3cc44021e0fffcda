"""`vdp probe` without torch: the same fields as `vdp.io.probe`, from ffprobe's packet listing.

Each case runs ``vdp probe --json`` in a child process that refuses to import torch,
torchcodec, Ray, numpy or pydantic, and compares its output with the library probe.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vdp.io import probe
from tests.conftest import MEDIA
from tests.io.test_streams import ffmpeg, make_two_stream_file

pytestmark = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffprobe (apt ffmpeg)")

BLOCKED = ("torch", "torchcodec", "ray", "numpy", "pydantic")
CHILD = textwrap.dedent(f"""
    import sys

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {BLOCKED!r}:
                raise ImportError(f"{{name}} is blocked in this test")

    sys.meta_path.insert(0, Blocker())
    from vdp.cli.main import main
    code = main(sys.argv[1:])
    assert not [m for m in sys.modules if m.split(".")[0] in {BLOCKED!r}]
    sys.exit(code)
""")


def vdp_probe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD, "probe", *args, "--json"], capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])


def generated(kind: str, folder: Path) -> Path:
    """Files whose metadata needs care: edit list, overstated AVI header, rotation with a flip,
    a Matroska clip, two programmes."""
    bars = folder / "bars.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-t", "2", "-c:v", "libx264", "-g", "10",
           "-pix_fmt", "yuv420p", str(bars))
    out = folder / {"edit": "edit.mp4", "avi": "clip.avi", "flip": "flip.mp4", "ntsc": "ntsc.mkv",
                    "ts": "two.ts"}[kind]
    if kind == "edit":
        ffmpeg("-ss", "0.7", "-i", str(bars), "-c", "copy", str(out))
    elif kind == "avi":
        ffmpeg("-i", str(bars), "-c:v", "mpeg4", "-q:v", "3", str(out))
        data = bytearray(out.read_bytes())
        for at in (data.find(b"avih") + 24, data.find(b"strh") + 40):  # dwTotalFrames, dwLength: 54
            data[at:at + 4] = (54).to_bytes(4, "little")
        out.write_bytes(bytes(data))
    elif kind == "flip":
        ffmpeg("-display_rotation", "90", "-display_hflip", "-i", str(bars), "-c", "copy", str(out))
    elif kind == "ntsc":
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30000/1001", "-frames:v", "30",
               "-c:v", "libx264", "-bf", "0", str(out))
    else:
        make_two_stream_file(out, container_args=("-program", "title=a:st=0:st=2",
                                                  "-program", "title=b:st=1:st=3", "-f", "mpegts"))
    return out


@pytest.mark.parametrize("name", sorted(p.name for p in MEDIA.iterdir()
                                        if p.suffix in {".mp4", ".mkv", ".mov", ".webm"}))
def test_probe_of_every_test_clip_matches_the_library_without_torch(name: str) -> None:
    proc = vdp_probe(str(MEDIA / name))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == probe(MEDIA / name).to_dict()


@pytest.mark.parametrize("kind", ["edit", "avi", "flip", "ntsc", "ts"])
def test_probe_of_unusual_files_matches_the_library_without_torch(kind: str, tmp_path: Path) -> None:
    path = generated(kind, tmp_path)
    proc = vdp_probe(str(path))
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got == probe(path).to_dict()
    if kind in ("edit", "avi"):  # the decoded count is the truth, with the library's warning
        assert got["num_frames"] < got["declared_frames"] and "declared" in got["warnings"][0]


def test_probe_with_chosen_streams_matches_the_library(tmp_path: Path) -> None:
    path = make_two_stream_file(tmp_path / "two.mp4")
    proc = vdp_probe(str(path), "--video-stream", "1", "--audio-stream", "1")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == probe(path, video_stream=1, audio_stream=1).to_dict()
    bad = vdp_probe(str(path), "--audio-stream", "7")
    assert bad.returncode == 2 and "no audio track 7" in bad.stderr and "Traceback" not in bad.stderr


def test_files_only_the_decoder_can_judge_fall_back_to_the_library(tmp_path: Path) -> None:
    """A raw H.264 stream (converted by the library) and broken inputs keep the library's answers."""
    raw = tmp_path / "clip.h264"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-frames:v", "10", "-c:v", "libx264",
           "-bsf:v", "h264_mp4toannexb", "-f", "h264", str(raw))
    proc = subprocess.run([sys.executable, "-m", "vdp.cli.main", "probe", str(raw), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == probe(raw).to_dict()
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    proc = subprocess.run([sys.executable, "-m", "vdp.cli.main", "probe", str(empty)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "DecodeError" in proc.stderr and "empty" in proc.stderr
