"""Real-world files made with ffmpeg at test time: edit lists, overstated headers, raw streams."""
from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from vdp.io import VideoSource, iter_batches, probe
from vdp.io._streams import timestamp_rate
from vdp.io._ffmpeg import ffmpeg_exe
from vdp.types import FrameBatch


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *args], check=True, timeout=120)


def decode_all(path: Path, **kwargs) -> FrameBatch:
    return FrameBatch.concat(list(iter_batches(path, **kwargs)))


@pytest.fixture(scope="module")
def bars(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s of 25 fps H.264 test pattern, a keyframe every 10 frames (100 frames)."""
    path = tmp_path_factory.mktemp("src") / "bars.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-t", "4", "-c:v", "libx264",
           "-g", "10", "-pix_fmt", "yuv420p", str(path))
    return path


def test_mp4_edit_list_decodes_the_shown_frames_with_a_warning(bars: Path, tmp_path: Path) -> None:
    # -ss before -i with -c copy keeps the packets from the keyframe before 1.3 s and writes an
    # edit list that hides the leading ones: players show the frames from 1.3 s on.
    path = tmp_path / "edit.mp4"
    ffmpeg("-ss", "1.3", "-i", str(bars), "-c", "copy", str(path))
    info = probe(path)
    assert info.declared_frames is not None and info.num_frames < info.declared_frames
    assert f"declared {info.declared_frames}, decoded {info.num_frames}" in info.warnings[0]
    frames = decode_all(path, batch_frames=16)
    assert len(frames) == info.num_frames
    # The frames are those players show: the source from about 1.3 s on, to its end.
    assert abs(info.num_frames - round((4 - 1.3) * 25)) <= 1
    src = decode_all(bars, batch_frames=100).frames
    offset = 100 - info.num_frames
    diff = (frames.frames.float() - src[offset:].float()).abs().mean()
    assert float(diff) < 2.0


def test_avi_header_overstating_its_frames_gives_a_warning(bars: Path, tmp_path: Path) -> None:
    avi = tmp_path / "clip.avi"
    ffmpeg("-i", str(bars), "-c:v", "mpeg4", "-q:v", "3", str(avi))
    data = bytearray(avi.read_bytes())
    avih, strh = data.find(b"avih"), data.find(b"strh")
    assert struct.unpack_from("<I", data, avih + 24)[0] == 100  # dwTotalFrames
    struct.pack_into("<I", data, avih + 24, 104)
    struct.pack_into("<I", data, strh + 40, 104)  # the stream header's dwLength
    avi.write_bytes(bytes(data))
    info = probe(avi)
    assert (info.declared_frames, info.num_frames) == (104, 100)
    assert "declared 104, decoded 100" in info.warnings[0]
    assert len(decode_all(avi, batch_frames=32)) == 100


@pytest.mark.parametrize("codec,ext,bsf", [("libx264", "h264", "h264_mp4toannexb"),
                                           ("libx265", "hevc", "hevc_mp4toannexb")])
def test_raw_elementary_stream_is_accepted(tmp_path: Path, codec: str, ext: str, bsf: str) -> None:
    raw = tmp_path / f"clip.{ext}"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-frames:v", "30", "-c:v", codec,
           "-pix_fmt", "yuv420p", *(["-x265-params", "log-level=error"] if ext == "hevc" else []),
           "-bsf:v", bsf, "-f", ext, str(raw))
    info = probe(raw)
    assert (info.num_frames, info.width, info.height, info.codec) == (30, 160, 120,
                                                                      "h264" if ext == "h264" else "hevc")
    assert f"raw {info.codec} elementary stream" in info.warnings[0]
    batch = decode_all(raw, batch_frames=8)
    assert batch.indices.tolist() == list(range(30))
    assert bool((batch.pts_seconds.diff() > 0).all())
    ref = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(raw), "-f", "rawvideo", "-pix_fmt",
                          "rgb24", "-"], capture_output=True, check=True, timeout=60).stdout
    ref_frames = np.frombuffer(ref, np.uint8).reshape(30, 120, 160, 3)
    ours = batch.frames.permute(0, 2, 3, 1).numpy()
    assert np.abs(ours.astype(np.int16) - ref_frames).mean() < 1.0


def test_job_report_carries_the_frame_count_warning(bars: Path, tmp_path: Path) -> None:
    from vdp.engine.job import run_job
    from vdp.spec import JobSpec

    path = tmp_path / "edit.mp4"
    ffmpeg("-ss", "1.3", "-i", str(bars), "-c", "copy", str(path))
    info = probe(path)
    spec = JobSpec.parse({"input": str(path), "stages": {"depth": {"input_size": 56,
                                                                    "synthetic_weights": True}},
                          "outputs": [{"kind": "depth_npz"}], "max_frames": 8})
    run_job(spec, tmp_path / "out", local=True)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["status"] == "succeeded", report.get("error")
    assert any(f"declared {info.declared_frames}, decoded {info.num_frames}" in w
               for w in report["warnings"])
    assert report["input"]["declared_frames"] == info.declared_frames


@pytest.fixture(scope="module")
def ntsc_mkv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 frames at 30000/1001 fps in Matroska (1 ms time base: durations of 33 and 34 ms)."""
    path = tmp_path_factory.mktemp("ntsc") / "ntsc.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30000/1001", "-frames:v", "60",
           "-c:v", "libx264", "-bf", "0", "-g", "10", str(path))
    return path


def test_mkv_without_default_duration_takes_its_rate_from_timestamps(ntsc_mkv: Path,
                                                                      tmp_path: Path) -> None:
    # Overwrite the track's DefaultDuration element (EBML id 23 E3 83, 4-byte value) with a Void
    # element of the same length: the container then declares 1000/33 fps (30.30).
    data = bytearray(ntsc_mkv.read_bytes())
    at = data.find(bytes([0x23, 0xE3, 0x83, 0x84]))
    assert at > 0
    data[at:at + 8] = bytes([0xEC, 0x86]) + bytes(6)
    path = tmp_path / "no_rate.mkv"
    path.write_bytes(bytes(data))
    rate, nominal = timestamp_rate(str(path))  # ffmpeg 9 guesses 30.30 fps from the first frames
    assert nominal == pytest.approx(30.30) and rate == pytest.approx(30000 / 1001, rel=1e-3)
    info = probe(path)
    assert info.fps == pytest.approx(30000 / 1001, rel=1e-3) and info.warnings == ()
    assert probe(ntsc_mkv).fps == pytest.approx(30000 / 1001, rel=1e-4)


def test_identical_timestamps_warn_and_use_the_nominal_rate(ntsc_mkv: Path, tmp_path: Path) -> None:
    path = tmp_path / "same_ts.mkv"
    ffmpeg("-i", str(ntsc_mkv), "-c", "copy", "-bsf:v", "setts=ts=0", str(path))
    assert timestamp_rate(str(path)) == (0.0, pytest.approx(29.97))
    info = probe(path)
    assert info.fps == pytest.approx(29.97)
    assert info.warnings == ("same_ts.mkv: the frames share one timestamp; using the nominal rate "
                             "29.97 fps",)


@pytest.mark.parametrize("rotation", ["0", "90", "180", "-90"])
@pytest.mark.parametrize("hflip", [False, True])
def test_display_matrix_rotation_and_reflection_match_ffmpeg(tmp_path: Path, rotation: str,
                                                             hflip: bool) -> None:
    plain = tmp_path / "plain.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x96:rate=25", "-frames:v", "3", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", str(plain))
    path = tmp_path / "oriented.mp4"
    ffmpeg("-display_rotation", rotation, *(["-display_hflip"] if hflip else []), "-i", str(plain),
           "-c", "copy", str(path))
    ours = decode_all(path).frames.permute(0, 2, 3, 1).numpy().astype(np.int16)
    ref = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True, timeout=60).stdout
    ref_frames = np.frombuffer(ref, np.uint8).reshape(ours.shape)
    assert np.abs(ours - ref_frames).mean() < 0.5
    # and the mirrored reading would be wrong: the test pattern is not symmetric
    assert np.abs(ours[:, :, ::-1] - ref_frames).mean() > 20


def test_reflection_is_read_from_the_decoded_streams_track(tmp_path: Path) -> None:
    # two video tracks: the first plain, the second mirrored by its display matrix
    plain = tmp_path / "plain.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x96:rate=25", "-frames:v", "3", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", str(plain))
    path = tmp_path / "two_tracks.mp4"
    ffmpeg("-i", str(plain), "-display_hflip", "-i", str(plain), "-map", "0:v", "-map", "1:v",
           "-c", "copy", str(path))
    first = decode_all(plain).frames
    assert torch.equal(FrameBatch.concat(list(iter_batches(path, stream_index=0))).frames, first)
    assert torch.equal(FrameBatch.concat(list(iter_batches(path, stream_index=1))).frames,
                       first.flip(-1))
