"""Decoding real clips (tests/resources/media) and broken input."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import MEDIA
from vdp.errors import DecodeError, JobTimeoutError
from vdp.io import VideoSource, iter_batches, probe
from vdp.io._deadline import call_with_deadline
from vdp.io._ffmpeg import ffmpeg_exe
from vdp.io.source_facts import bit_depth_of
from vdp.types import FrameBatch

# name: (frames, display width, display height, codec, has_audio, bit depth, rotation)
CLIPS = {
    "sam2__05_default_juggle.mp4": (247, 1280, 720, "h264", False, 8, 0),
    "sam2__bedroom.mp4": (200, 960, 540, "h264", False, 8, 0),
    "androidx__sample_with_increasing_timestamps_360p.mp4": (512, 640, 360, "h264", True, 8, 0),
    "decord__flipping_a_pancake.mkv": (310, 426, 240, "h264", True, 8, 0),
    "decord__video_90.mov": (3, 320, 568, "h264", False, 8, -90),
    "androidx__bear-vp9-odd-dimensions.webm": (30, 161, 121, "vp9", False, 8, 0),
    "var_fps_video.mp4": (300, 128, 128, "h264", False, 8, 0),
    "h265_10bits.mp4": (30, 200, 200, "hevc", False, 10, 0),
    "av1_video.mkv": (125, 640, 360, "av1", False, 8, 0),
}
BROKEN_DEADLINE_S = 10.0


def decode_all(path: Path, **kwargs) -> FrameBatch:
    return FrameBatch.concat(list(iter_batches(path, **kwargs)))


def ffmpeg_rgb(path: Path, frames: int, width: int, height: int) -> np.ndarray:
    """The first frames as the ffmpeg CLI decodes them (auto-rotated, rgb24), [T,H,W,3]."""
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-frames:v", str(frames),
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True, timeout=60).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_probe_reports_display_metadata(name: str) -> None:
    frames, width, height, codec, has_audio, bits, rotation = CLIPS[name]
    info = probe(MEDIA / name)
    assert (info.num_frames, info.width, info.height) == (frames, width, height)
    assert (info.codec, info.has_audio, info.bit_depth) == (codec, has_audio, bits)
    assert info.rotation_degrees == rotation
    assert info.duration_seconds > 0 and info.fps == pytest.approx(frames / info.duration_seconds)


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_every_clip_decodes_fully_in_order(name: str) -> None:
    frames, width, height = CLIPS[name][:3]
    total = 0
    last_pts = -1.0
    for batch in iter_batches(MEDIA / name, batch_frames=64):
        assert batch.frames.dtype == torch.uint8
        assert tuple(batch.frames.shape[1:]) == (3, height, width)
        assert batch.indices.tolist() == list(range(total, total + len(batch)))
        assert batch.pts_seconds.dtype == torch.float64
        assert bool((batch.pts_seconds.diff() > 0).all()) and batch.pts_seconds[0] > last_pts
        last_pts = float(batch.pts_seconds[-1])
        total += len(batch)
    assert total == frames


@pytest.mark.parametrize("name", ["decord__video_90.mov", "h265_10bits.mp4",
                                  "androidx__bear-vp9-odd-dimensions.webm"])
def test_pixels_match_ffmpeg_cli(name: str) -> None:
    # Rotated (phone clip must be upright, 320 wide), 10-bit (-> 8-bit RGB), odd size.
    _, width, height = CLIPS[name][:3]
    ours = next(iter_batches(MEDIA / name, batch_frames=3)).frames.permute(0, 2, 3, 1).numpy()
    ref = ffmpeg_rgb(MEDIA / name, 3, width, height)
    assert ours.shape == ref.shape
    assert np.abs(ours.astype(np.int16) - ref).mean() < 1.0


def test_variable_frame_rate_keeps_pts() -> None:
    batch = decode_all(MEDIA / "var_fps_video.mp4", batch_frames=50)
    deltas = batch.pts_seconds.diff()
    assert torch.allclose(deltas[:29], torch.full((29,), 1 / 30, dtype=torch.float64), atol=1e-3)
    assert float(deltas.max()) > 1.9 / 30  # the rate drops after frame 30
    assert float(deltas[30:].mean()) == pytest.approx(1.5 / 30, rel=0.05)


@pytest.mark.parametrize("name", ["av1_video.mkv", "var_fps_video.mp4"])
def test_batches_concatenate_to_single_decode(name: str) -> None:
    frames = CLIPS[name][0]
    whole = decode_all(MEDIA / name, batch_frames=frames)
    pieces = list(iter_batches(MEDIA / name, batch_frames=7))
    assert [len(b) for b in pieces[:-1]] == [7] * (len(pieces) - 1)
    joined = FrameBatch.concat(pieces)
    assert torch.equal(joined.frames, whole.frames)
    assert torch.equal(joined.indices, whole.indices)
    assert torch.equal(joined.pts_seconds, whole.pts_seconds)


@pytest.mark.parametrize("name,start,stop", [
    ("androidx__sample_with_increasing_timestamps_360p.mp4", 263, 290),  # keyframes 0,18,250,276
    ("decord__flipping_a_pancake.mkv", 170, 200),  # keyframes 0,150,300
])
def test_start_frame_seek_matches_full_decode(name: str, start: int, stop: int) -> None:
    whole = decode_all(MEDIA / name, batch_frames=64, stop_frame=stop)
    seeked = decode_all(MEDIA / name, batch_frames=8, start_frame=start, stop_frame=stop)
    assert seeked.indices.tolist() == list(range(start, stop))
    assert torch.equal(seeked.frames, whole.frames[start:])
    assert torch.equal(seeked.pts_seconds, whole.pts_seconds[start:])


def test_frame_range_outside_video_is_index_error() -> None:
    with VideoSource(MEDIA / "decord__video_90.mov") as source:
        with pytest.raises(IndexError, match=r"frame range \[3, 3\) .* 3 frames"):
            source.batches(start_frame=3)
        with pytest.raises(IndexError, match=r"\[0, 9\)"):
            source.batches(stop_frame=9)
        with pytest.raises(ValueError, match="batch_frames must be >= 1"):
            source.batches(batch_frames=0)


def test_cuda_request_without_cuda_falls_back_to_cpu() -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA present: the fallback path is not taken")
    source = VideoSource(MEDIA / "decord__video_90.mov", device="cuda")
    assert source.status.requested_device == "cuda"
    assert source.status.device == "cpu" and source.status.fallback
    assert "CUDA is not available" in source.status.reason
    assert next(source.batches()).frames.device.type == "cpu"


def test_bad_device_names_allowed_values() -> None:
    with pytest.raises(ValueError, match="'cpu', 'cuda' or 'cuda:N'"):
        VideoSource(MEDIA / "decord__video_90.mov", device="tpu")


# -- broken input ---------------------------------------------------------------------------
def make_truncated(tmp_path: Path) -> Path:
    data = (MEDIA / "sam2__05_default_juggle.mp4").read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: len(data) // 2])
    return path


def make_zero_bytes(tmp_path: Path) -> Path:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    return path


def make_text(tmp_path: Path) -> Path:
    path = tmp_path / "notes.mp4"
    path.write_text("this is a text file, not a video\n" * 20)
    return path


def make_audio_only(tmp_path: Path) -> Path:
    path = tmp_path / "tone.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=1", "-c:a", "aac", str(path)],
                   check=True, timeout=60)
    return path


def make_missing(tmp_path: Path) -> Path:
    return tmp_path / "nothing_here.mp4"


@pytest.mark.parametrize("make,message", [
    (make_zero_bytes, r"empty \(0 bytes\)"),
    (make_text, r"not a readable video file.*Invalid data"),
    (make_audio_only, r"no video stream \(the file contains only audio\)"),
    (make_missing, r"no such file"),
])
def test_broken_input_raises_decode_error_quickly(tmp_path: Path, make, message: str) -> None:
    path = make(tmp_path)
    start = time.monotonic()
    with pytest.raises(DecodeError, match=message):
        for _ in iter_batches(path):
            pass
    with pytest.raises(DecodeError, match=message):
        probe(path)
    assert time.monotonic() - start < BROKEN_DEADLINE_S


def test_truncated_mp4_counts_the_frames_present_and_fails_at_the_cut_frame(tmp_path: Path) -> None:
    # The header declares 247 frames; the packets the scan finds are the count (with a warning),
    # and the last packet, cut in half, fails to decode: a clear error naming the frame.
    path = make_truncated(tmp_path)
    info = probe(path)
    assert info.declared_frames == 247 and 0 < info.num_frames < 247
    assert info.warnings == (f"truncated.mp4: the container declares 247 frames but "
                             f"{info.num_frames} decode (declared 247, decoded {info.num_frames}); "
                             f"using the {info.num_frames} decoded frames",)
    with pytest.raises(DecodeError, match=rf"frame \d+ of {info.num_frames} could not be decoded"):
        decode_all(path, batch_frames=64)


def test_truncated_mkv_decodes_exactly_the_frames_present(tmp_path: Path) -> None:
    # MKV has no frame count in its header: a cut file is indistinguishable from a shorter
    # video, so probe and decode agree on the frames that are there (documented limitation).
    data = (MEDIA / "decord__flipping_a_pancake.mkv").read_bytes()
    path = tmp_path / "cut.mkv"
    path.write_bytes(data[: len(data) // 2])
    info = probe(path)
    assert 0 < info.num_frames < 310
    assert len(decode_all(path, batch_frames=64)) == info.num_frames


def test_corrupted_mid_stream_reports_good_frames_and_failing_index() -> None:
    path = MEDIA / "corrupted.mp4"
    assert probe(path).num_frames == 50
    seen: list[int] = []
    start = time.monotonic()
    with pytest.raises(DecodeError, match=r"frame 28 of 50 could not be decoded \(.*Invalid "
                                          r"data.*\); frames 0-27 \(28 frames\) decoded OK"):
        for batch in iter_batches(path, batch_frames=16):
            seen.extend(batch.indices.tolist())
    assert seen == list(range(28))  # every good frame before the failure was delivered
    assert time.monotonic() - start < BROKEN_DEADLINE_S


def test_corrupted_stream_from_a_later_start_counts_from_there() -> None:
    with pytest.raises(DecodeError, match=r"frame 28 of 50 .* frames 20-27 \(8 frames\)"):
        for _ in iter_batches(MEDIA / "corrupted.mp4", start_frame=20):
            pass


def test_failed_batch_call_is_retried_frame_by_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    # A batch call that fails or comes back short is not trusted: the range is decoded frame by
    # frame, and when every frame decodes the result equals the normal decode.
    path = MEDIA / "h265_10bits.mp4"
    expected = decode_all(path, batch_frames=30)
    source = VideoSource(path)
    real = source._decoder.get_frames_in_range
    calls = iter([RuntimeError("simulated"), "short"] + ["ok"] * 10)

    def flaky(start: int, stop: int):
        what = next(calls)
        if isinstance(what, Exception):
            raise what
        return real(start, stop - 1) if what == "short" else real(start, stop)

    monkeypatch.setattr(source._decoder, "get_frames_in_range", flaky, raising=False)
    got = FrameBatch.concat(list(source.batches(batch_frames=8)))
    assert torch.equal(got.frames, expected.frames)
    assert torch.equal(got.pts_seconds, expected.pts_seconds)


# -- never hang -----------------------------------------------------------------------------
def test_deadline_raises_instead_of_hanging() -> None:
    start = time.monotonic()
    with pytest.raises(JobTimeoutError, match=r"sleeping did not finish within 0.2 s"):
        call_with_deadline(lambda: time.sleep(5), 0.2, "sleeping")
    assert time.monotonic() - start < 2
    with pytest.raises(ZeroDivisionError):
        call_with_deadline(lambda: 1 / 0, 1.0, "dividing")
    assert call_with_deadline(lambda: 42, 1.0, "answering") == 42


def test_stuck_batch_times_out_and_source_is_unusable(monkeypatch: pytest.MonkeyPatch) -> None:
    source = VideoSource(MEDIA / "var_fps_video.mp4", timeout_s=0.3)
    monkeypatch.setattr(source._decoder, "get_frames_in_range",
                        lambda *a, **k: time.sleep(3), raising=False)
    batches = source.batches()
    start = time.monotonic()
    with pytest.raises(JobTimeoutError, match=r"decoding frames 0-15 of .*var_fps_video.mp4 did "
                                              r"not finish within 0.3 s"):
        next(batches)
    assert time.monotonic() - start < 2
    with pytest.raises(JobTimeoutError, match="an earlier decode call timed out"):
        next(source.batches(start_frame=100))


@pytest.mark.parametrize("fmt,bits", [("yuv420p", 8), ("yuvj420p", 8), ("yuv420p10le", 10),
                                      ("p010le", 10), ("yuv444p12be", 12), ("gray16le", 16),
                                      ("rgb48le", 16), ("nv12", 8), ("", 8)])
def test_bit_depth_from_pixel_format(fmt: str, bits: int) -> None:
    assert bit_depth_of(fmt) == bits
