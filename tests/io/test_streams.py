"""Choosing the video stream and the audio track: files with two of each, made with ffmpeg."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from vdp.io import Mp4Writer, iter_batches, probe
from vdp.io._ffmpeg import ffmpeg_exe
from vdp.io.streams import StreamSelectionError, list_streams, parse_listing
from vdp.errors import SpecError

TONES = (440.0, 1000.0)  # Hz of audio track 0 and 1
RED = (255, 0, 0)


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *args], check=True, timeout=120)


def make_two_stream_file(path: Path, *, container_args: tuple[str, ...] = ()) -> Path:
    """1 s, 25 fps: video 0 the test pattern, video 1 solid red; audio 0 a 440 Hz tone
    (English), audio 1 a 1000 Hz tone (French)."""
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=1",
           "-f", "lavfi", "-i", "color=c=red:size=160x120:rate=25:duration=1",
           "-f", "lavfi", "-i", f"sine=frequency={TONES[0]:g}:duration=1:sample_rate=48000",
           "-f", "lavfi", "-i", f"sine=frequency={TONES[1]:g}:duration=1:sample_rate=48000",
           "-map", "0", "-map", "1", "-map", "2", "-map", "3", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           "-c:a", "aac", "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra",
           *container_args, str(path))
    return path


def audio_tracks(path: Path) -> list:
    listing = list_streams(str(path))
    assert listing is not None
    return listing.of_kind("audio")


def dominant_hz(path: Path, track: str | None = "0:a:0") -> float:
    """The strongest frequency of an audio track (None: the one a plain ``ffmpeg -i`` picks),
    decoded by ffmpeg to 48 kHz mono."""
    chosen = ["-vn"] if track is None else ["-map", track]
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), *chosen, "-f", "f32le",
                          "-ac", "1", "-ar", "48000", "-"], capture_output=True, check=True, timeout=60).stdout
    pcm = np.frombuffer(raw, np.float32)
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    return float(np.fft.rfftfreq(len(pcm), 1 / 48000)[spectrum.argmax()])


def ffmpeg_default_frame(path: Path) -> np.ndarray:
    """Frame 0 of the video stream a plain ``ffmpeg -i`` picks, RGB [H,W,3]."""
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True, timeout=60).stdout
    return np.frombuffer(raw, np.uint8).reshape(120, 160, 3)


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_two_stream_file(tmp_path_factory.mktemp("streams") / "two.mp4")


def first_frame(path: Path, **kwargs) -> np.ndarray:
    batch = next(iter(iter_batches(path, batch_frames=1, **kwargs)))
    return batch.frames[0].permute(1, 2, 0).numpy()


def test_default_is_ffmpegs_pick(two: Path) -> None:
    info = probe(two)
    used = info.streams_used
    assert used["video"] == {"index": 0, "kind": "video", "position": 0, "codec": "h264", "language": None}
    assert used["audio"]["position"] == 0 and used["audio"]["language"] == "eng"
    assert info.video_stream == 0 and info.audio_stream == used["audio"]["index"] and info.has_audio
    # the frames decoded by default are those ffmpeg shows
    np.testing.assert_array_equal(first_frame(two, stream_index=info.video_stream), ffmpeg_default_frame(two))
    assert abs(dominant_hz(two, f"0:{info.audio_stream}") - dominant_hz(two, None)) < 1


def test_choosing_the_second_video_stream_and_audio_track(two: Path) -> None:
    info = probe(two, video_stream=1, audio_stream=1)
    assert info.streams_used["video"]["position"] == 1 and info.streams_used["audio"]["language"] == "fra"
    frame = first_frame(two, stream_index=info.video_stream)
    assert np.abs(frame.reshape(-1, 3).mean(0) - RED).max() < 8  # the solid red stream
    assert np.abs(first_frame(two).astype(float) - frame).mean() > 40  # not the test pattern
    assert abs(dominant_hz(two, f"0:{info.audio_stream}") - TONES[1]) < 5


def test_no_audio(two: Path) -> None:
    info = probe(two, audio_stream="none")
    assert not info.has_audio and info.audio_stream is None and info.streams_used["audio"] is None


@pytest.mark.parametrize("choice", [{"video_stream": 2}, {"audio_stream": 2}, {"audio_stream": -1}])
def test_a_stream_the_file_lacks_is_a_spec_error_listing_the_streams(two: Path, choice: dict) -> None:
    with pytest.raises(StreamSelectionError) as err:
        probe(two, **choice)
    assert isinstance(err.value, SpecError)
    msg = str(err.value)
    assert "video streams [0: stream #0 h264 160x120; 1: stream #1 h264 160x120]" in msg
    assert "audio tracks [0: stream #2 aac (eng) 48000 Hz mono; 1: stream #3 aac (fra)" in msg


def test_file_without_audio_refuses_an_audio_track(tmp_path: Path) -> None:
    silent = tmp_path / "silent.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1", "-c:v", "libx264", str(silent))
    assert probe(silent).audio_stream is None and not probe(silent).has_audio
    with pytest.raises(StreamSelectionError, match=r"no audio track 0; .* audio tracks \[none\]"):
        probe(silent, audio_stream=0)


def write_clip(out: Path, **kwargs) -> Path:
    with Mp4Writer(out, fps=25.0, preset="ultrafast", **kwargs) as w:
        w.write(torch.zeros(25, 3, 64, 80, dtype=torch.uint8))
    return out


@pytest.mark.parametrize("track", [0, 1])
def test_video_output_muxes_exactly_the_chosen_audio_track(two: Path, tmp_path: Path, track: int) -> None:
    info = probe(two, audio_stream=track)
    out = write_clip(tmp_path / "out.mp4", audio_from=two, audio_stream=info.audio_stream)
    tracks = audio_tracks(out)
    assert len(tracks) == 1 and tracks[0].language == ("eng", "fra")[track]
    assert abs(dominant_hz(out) - TONES[track]) < 5


def test_two_programme_transport_stream_gives_one_audio_track(tmp_path: Path) -> None:
    ts = make_two_stream_file(tmp_path / "two.ts", container_args=(
        "-program", "title=one:st=0:st=2", "-program", "title=two:st=1:st=3", "-f", "mpegts"))
    assert len(audio_tracks(ts)) == 2
    info = probe(ts)
    out = write_clip(tmp_path / "default.mp4", audio_from=ts, audio_stream=info.audio_stream)
    assert len(audio_tracks(out)) == 1 and abs(dominant_hz(out) - TONES[0]) < 5
    # a writer told nothing but the file still takes one track: ffmpeg's pick
    out = write_clip(tmp_path / "plain.mp4", audio_from=ts)
    assert len(audio_tracks(out)) == 1
    chosen = probe(ts, video_stream=1, audio_stream=1)
    out = write_clip(tmp_path / "chosen.mp4", audio_from=ts, audio_stream=chosen.audio_stream)
    assert len(audio_tracks(out)) == 1 and abs(dominant_hz(out) - TONES[1]) < 5


def test_listing_parses_programmes_and_languages() -> None:
    log = """Input #0, mpegts, from 'x.ts':
  Program 1
    Stream #0:0[0x100]: Video: h264 (High) ([27][0][0][0] / 0x001B), yuv420p, 160x120, 25 fps
    Stream #0:2[0x101](eng): Audio: aac (LC) ([15][0][0][0] / 0x000F), 48000 Hz, mono, fltp
  Program 2
    Stream #0:1[0x102]: Video: h264 (High), yuv420p, 320x240, 25 fps
    Stream #0:3[0x103](fra): Audio: mp2, 44100 Hz, stereo, fltp, 384 kb/s
Stream mapping:
  Stream #0:1 -> #0:0 (h264 (native) -> wrapped_avframe (native))
  Stream #0:3 -> #0:1 (mp2 (native) -> pcm_s16le (native))
"""
    listing = parse_listing(log)
    assert [(s.index, s.kind, s.position) for s in listing.streams] == [
        (0, "video", 0), (2, "audio", 0), (1, "video", 1), (3, "audio", 1)]
    assert listing.default_video == 1 and listing.default_audio == 3
    assert listing.by_index(3).details == " 44100 Hz stereo" and listing.by_index(2).language == "eng"
