"""Writers: exact round trips, encoded outputs decode back, and atomicity under failure."""
from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from tests.conftest import MEDIA
from vdp.errors import DecodeError, EncodeError
from vdp.io import (CompositeMp4Writer, Mp4Writer, NpyWriter, NpzWriter, Png16SequenceWriter,
                    PngRgbaSequenceWriter, WebmAlphaWriter, encode_in_idle_time, iter_batches, probe,
                    read_webm_alpha, read_webm_rgba)
from vdp.io._ffmpeg import FfmpegPipe
from vdp.io.colour import SDR_BT709
from vdp.io.writers import png
from vdp.io.writers._atomic import AtomicOutput
from vdp.io.writers._pipe import rgb_alpha_buffers, with_alpha
from vdp.io.writers.encoders import nvenc_problem, x264_threads
from vdp.io.writers.png_encode import encode_png
from vdp.types import FrameBatch

REPO = Path(__file__).resolve().parents[2]


def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def moving_disk_rgba(t: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """RGB [T,3,H,W] and alpha [T,H,W]: a horizontal alpha ramp with an opaque moving disk."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    alpha = np.empty((t, h, w), np.uint8)
    rgb = np.empty((t, 3, h, w), np.uint8)
    for i in range(t):
        a = xx / (w - 1) * 255
        a[(xx - (8 + 4 * i)) ** 2 + (yy - h / 2) ** 2 < 10 ** 2] = 255
        alpha[i] = np.round(a).astype(np.uint8)
        rgb[i, 0] = (yy * 3 + i * 5) % 256
        rgb[i, 1] = 90
        rgb[i, 2] = (xx * 2) % 256
    return rgb, alpha


def leftovers(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# -- exact round trips ----------------------------------------------------------------------
def test_png16_sequence_round_trip_is_bit_exact(tmp_path: Path) -> None:
    depth = rng().integers(0, 65536, size=(5, 13, 17), dtype=np.uint16)
    out = tmp_path / "depth_png"
    with Png16SequenceWriter(out, start_index=10) as writer:
        writer.write(depth[:3])
        writer.write(torch.from_numpy(depth[3:].astype(np.int32)).to(torch.uint16))
        assert not out.exists()  # nothing under the final name before close
    assert leftovers(out) == [f"frame_{i:06d}.png" for i in range(10, 15)]
    back = np.stack([iio.imread(out / f"frame_{i:06d}.png") for i in range(10, 15)])
    assert back.dtype == np.uint16 and np.array_equal(back, depth)
    assert leftovers(tmp_path) == ["depth_png"]


def test_png_rgba_sequence_round_trip_is_exact(tmp_path: Path) -> None:
    rgb, alpha = moving_disk_rgba(4, 21, 33)
    with PngRgbaSequenceWriter(tmp_path / "rgba") as writer:
        writer.write(torch.from_numpy(rgb[:2]), torch.from_numpy(alpha[:2]))
        writer.write(rgb[2:], alpha[2:])
    back = np.stack([iio.imread(tmp_path / "rgba" / f"frame_{i:06d}.png") for i in range(4)])
    assert back.shape == (4, 21, 33, 4)
    assert np.array_equal(back[..., 3], alpha)
    assert np.array_equal(back[..., :3], rgb.transpose(0, 2, 3, 1))


# -- PNG encoding threads -------------------------------------------------------------------
def hold_png_encoding(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """PNG frames wait in the encoder until the returned event is set."""
    release = threading.Event()
    encode = png.png_parts

    def held(image: np.ndarray, *, level: int) -> list[bytes]:
        release.wait(30)
        return encode(image, level=level)

    monkeypatch.setattr(png, "png_parts", held)
    return release


def test_png_write_queues_batches_and_close_waits_for_them(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    release = hold_png_encoding(monkeypatch)
    depth = rng().integers(0, 65536, size=(6, 9, 11), dtype=np.uint16)
    writer = Png16SequenceWriter(tmp_path / "seq")
    for start in range(0, 2 * png.MAX_PENDING_BATCHES, 2):  # returns while nothing is encoded
        batch = depth[start:start + 2].copy()
        writer.write(batch)
        batch[:] = 0  # the caller may reuse its array once `write` returns
    assert writer.frames_written == 0 and leftovers(Path(writer.tmp_path)) == []
    release.set()
    writer.write(depth[4:])  # one batch too many: waits for the oldest
    assert writer.frames_written == 2
    writer.close()
    back = np.stack([iio.imread(tmp_path / "seq" / f"frame_{i:06d}.png") for i in range(6)])
    assert np.array_equal(back, depth)


def test_png_frames_waiting_to_encode_are_bounded_in_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large frames (4K/8K) wait for the oldest batch once the older batches pass MAX_PENDING_BYTES."""
    release = hold_png_encoding(monkeypatch)
    monkeypatch.setattr(png, "MAX_PENDING_BYTES", 3 * 9 * 11 * 2)  # three frames
    monkeypatch.setattr(png, "MAX_PENDING_BATCHES", 5)
    depth = rng().integers(0, 65536, size=(6, 9, 11), dtype=np.uint16)
    writer = Png16SequenceWriter(tmp_path / "seq")
    writer.write(depth[:3])  # the newest batch never waits
    writer.write(depth[3:5])  # three frames before it: within the bound
    assert writer.frames_written == 0
    release.set()
    writer.write(depth[5:])  # five before it: waits for the oldest batch
    assert writer.frames_written == 3
    writer.close()
    back = np.stack([iio.imread(tmp_path / "seq" / f"frame_{i:06d}.png") for i in range(6)])
    assert np.array_equal(back, depth)


def test_png_frames_no_thread_has_started_are_encoded_by_the_writer(tmp_path: Path) -> None:
    """A pool that gets no CPU (idle priority on busy cores) must not stall the writer."""
    release = threading.Event()
    pool = png._pool(False)
    busy = [pool.submit(release.wait, 60) for _ in range(len(os.sched_getaffinity(0)))]
    depth = rng().integers(0, 65536, size=(7, 5, 6), dtype=np.uint16)
    try:
        with Png16SequenceWriter(tmp_path / "seq") as writer:
            for start in range(0, 7, 2):
                writer.write(depth[start:start + 2])
        assert not any(f.done() for f in busy)  # every frame was written while the pool was busy
    finally:
        release.set()
    back = np.stack([iio.imread(tmp_path / "seq" / f"frame_{i:06d}.png") for i in range(7)])
    assert np.array_equal(back, depth)


def test_png_frame_stuck_in_the_encoder_is_encode_error_after_the_timeout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started, release = threading.Event(), threading.Event()

    def stuck(image: np.ndarray, *, level: int) -> list[bytes]:
        started.set()
        release.wait(30)
        return []

    monkeypatch.setattr(png, "png_parts", stuck)
    writer = Png16SequenceWriter(tmp_path / "seq", timeout_s=0.2)
    try:
        writer.write(np.ones((1, 4, 4), np.uint16))
        assert started.wait(10)  # the oldest frame is in the encoder, not waiting for a thread
        with pytest.raises(EncodeError, match="took longer than 0 s"):
            for _ in range(png.MAX_PENDING_BATCHES):
                writer.write(np.ones((1, 4, 4), np.uint16))
        assert writer.closed
    finally:
        release.set()


def test_png_encoding_failure_is_encode_error_and_leaves_nothing(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(image: np.ndarray, *, level: int) -> bytes:
        raise OSError("No space left on device")

    monkeypatch.setattr(png, "png_parts", failing)
    writer = Png16SequenceWriter(tmp_path / "seq")
    writer.write(np.ones((2, 4, 4), np.uint16))  # queued: the failure surfaces on a later call
    with pytest.raises(EncodeError, match="No space left on device"):
        writer.close()
    assert writer.closed and leftovers(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux-only")
def test_png_encodes_at_idle_priority_only_inside_encode_in_idle_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policies: list[int] = []
    encode = png.filtered_png_parts

    def recording(rows: np.ndarray, width: int, **kwargs) -> list[bytes]:
        policies.append(os.sched_getscheduler(0))
        return encode(rows, width, **kwargs)

    monkeypatch.setattr(png, "filtered_png_parts", recording)
    rgb, alpha = moving_disk_rgba(2, 16, 16)
    for name, idle in (("before", False), ("inside", True), ("after", False)):
        with encode_in_idle_time() if idle else contextlib.nullcontext():
            with PngRgbaSequenceWriter(tmp_path / name) as writer:
                writer.write(rgb, alpha)
                deadline = time.monotonic() + 30  # let the threads encode them (not `close`)
                while len(os.listdir(writer.tmp_path)) < 2 and time.monotonic() < deadline:
                    time.sleep(0.01)
        assert np.array_equal(iio.imread(tmp_path / name / "frame_000001.png")[..., 3], alpha[1])
    assert policies[2:4] == [os.SCHED_IDLE] * 2
    assert os.SCHED_IDLE not in policies[:2] + policies[4:]


def test_npy_round_trip_is_exact(tmp_path: Path) -> None:
    depth = rng().standard_normal((7, 9, 11)).astype(np.float32)
    with NpyWriter(tmp_path / "depth.npy", num_frames=7) as writer:
        for i in range(0, 7, 3):
            writer.write(torch.from_numpy(depth[i:i + 3]))
    back = np.load(tmp_path / "depth.npy")
    assert back.dtype == np.float32 and np.array_equal(back, depth)
    assert leftovers(tmp_path) == ["depth.npy"]


@pytest.mark.parametrize("compress", [False, True])
def test_npz_round_trip_is_exact(tmp_path: Path, compress: bool) -> None:
    depth = rng().standard_normal((6, 5, 8)).astype(np.float32)
    with NpzWriter(tmp_path / "depth.npz", num_frames=6, compress=compress) as writer:
        writer.write(depth[:4])
        writer.write(depth[4:])
    with np.load(tmp_path / "depth.npz") as npz:
        assert npz.files == ["depth"]
        assert np.array_equal(npz["depth"], depth)


@pytest.mark.parametrize("writer_cls", [NpyWriter, NpzWriter])
def test_array_writers_refuse_short_or_mismatched_input(tmp_path: Path, writer_cls) -> None:
    target = tmp_path / "a.arr"
    writer = writer_cls(target, num_frames=4)
    writer.write(np.zeros((3, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"like the first batch, got float64"):
        writer.write(np.zeros((1, 2, 2), np.float64))
    with pytest.raises(ValueError, match=r"3 \+ 2 frames exceed num_frames=4"):
        writer.write(np.zeros((2, 2, 2), np.float32))
    with pytest.raises(EncodeError, match=r"3 of 4 frames were written"):
        writer.close()
    assert leftovers(tmp_path) == []


# -- encoded outputs ------------------------------------------------------------------------
def test_mp4_decodes_back_with_right_count_and_size(tmp_path: Path) -> None:
    src = MEDIA / "androidx__bear-vp9-odd-dimensions.webm"  # 161x121, 30 frames
    source = FrameBatch.concat(list(iter_batches(src, batch_frames=30)))
    out = tmp_path / "bear.mp4"
    with Mp4Writer(out, fps=30, crf=16, preset="veryfast") as writer:
        for batch in iter_batches(src, batch_frames=8):
            writer.write(batch.frames)
    assert writer.encoded_size == (122, 162)  # odd sizes padded to even
    info = probe(out)
    assert (info.num_frames, info.width, info.height, info.codec) == (30, 162, 122, "h264")
    assert info.fps == pytest.approx(30) and not info.has_audio
    back = FrameBatch.concat(list(iter_batches(out, batch_frames=30))).frames
    err = (back[:, :, :121, :161].float() - source.frames.float()).abs().mean()
    assert err < 4.0
    assert leftovers(tmp_path) == ["bear.mp4"]


def test_mp4_auto_encoder_uses_nvenc_only_where_a_real_encode_works(tmp_path: Path) -> None:
    """The probe really encodes with NVENC; without a working one "auto" falls back to x264."""
    problem = nvenc_problem("h264")
    rgb, _ = moving_disk_rgba(6, 64, 96)
    with Mp4Writer(tmp_path / "auto.mp4", fps=24, encoder="auto") as writer:
        writer.write(rgb)
    if problem is None:
        assert writer.encoder_used == "h264_nvenc" and writer.settings.fallback_reason is None
    else:
        assert "h264_nvenc" in problem
        assert writer.encoder_used == "libx264" and writer.settings.fallback_reason == problem
        with pytest.raises(EncodeError, match="'nvenc' was asked for"):
            with Mp4Writer(tmp_path / "strict.mp4", fps=24, encoder="nvenc") as strict:
                strict.write(rgb)
    info = probe(tmp_path / "auto.mp4")
    assert (info.num_frames, info.width, info.height, info.codec) == (6, 96, 64, "h264")
    back = FrameBatch.concat(list(iter_batches(tmp_path / "auto.mp4", batch_frames=6))).frames
    assert (back.float() - torch.from_numpy(rgb).float()).abs().mean() < 6.0
    assert leftovers(tmp_path) == ["auto.mp4"]
    with Mp4Writer(tmp_path / "cpu.mp4", fps=24, encoder="cpu") as cpu:
        cpu.write(rgb)
    assert cpu.encoder_used == "libx264" and cpu.settings.fallback_reason is None


def test_mp4_x265_gives_hevc_and_yuv444p_keeps_full_chroma(tmp_path: Path) -> None:
    """``x265`` is libx265 whatever codec the caller picked (tagged hvc1); ``yuv444p`` reaches
    the file; an unknown pixel format is refused before anything is written."""
    rgb, _ = moving_disk_rgba(4, 64, 96)
    with Mp4Writer(tmp_path / "hevc.mp4", fps=24, encoder="x265", codec="h264",
                   pixel_format="yuv444p") as writer:
        writer.write(rgb)
    assert writer.encoder_used == "libx265" and writer.codec == "hevc"
    info = probe(tmp_path / "hevc.mp4")
    assert (info.codec, info.pixel_format, info.num_frames) == ("hevc", "yuv444p", 4)
    with pytest.raises(ValueError, match="pixel_format"):
        Mp4Writer(tmp_path / "bad.mp4", fps=24, pixel_format="rgb24")
    assert leftovers(tmp_path) == ["hevc.mp4"]


def x264_option(path: Path, name: str) -> str:
    """The value of option `name` in the settings x264 writes into its stream (an SEI message)."""
    found = re.search(rb"[ :]" + name.encode() + rb"=([^ ]+)", path.read_bytes())
    assert found, f"{path.name} names no x264 {name}"
    return found.group(1).decode()


def test_mp4_ultrafast_x264_gets_one_thread_per_1080p_of_pixels(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Unless threads are asked for, ultrafast x264 runs one thread per 1080p of pixels (at most
    the cores); other presets keep x264's default; asked-for threads win."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert [x264_threads("ultrafast", n) for n in (64 * 96, 1920 * 1080, 3840 * 2160, 7680 * 4320)] == [1, 1, 4, 4]
    assert x264_threads("veryfast", 1920 * 1080) is None
    rgb, _ = moving_disk_rgba(4, 64, 96)
    options = {}
    for name, kwargs in {"lean": {"preset": "ultrafast"}, "asked": {"preset": "ultrafast", "threads": 2},
                         "default": {"preset": "veryfast"}}.items():
        with Mp4Writer(tmp_path / f"{name}.mp4", fps=24, encoder="cpu", **kwargs) as writer:
            writer.write(rgb)
        options[name] = writer.settings.options
    assert x264_option(tmp_path / "lean.mp4", "threads") == "1"
    assert x264_option(tmp_path / "asked.mp4", "threads") == "2"
    assert "threads" not in options["default"]  # x264 picks (1.5 per core, fewer on small frames)


def test_png16_takes_big_endian_frames_it_owns_without_a_copy(tmp_path: Path) -> None:
    depth = rng().integers(0, 65536, size=(3, 7, 9), dtype=np.uint16)
    with Png16SequenceWriter(tmp_path / "seq") as writer:
        writer.write(depth.astype(">u2"), owned=True)
        with pytest.raises(ValueError, match="uint16"):
            writer.write(depth.astype(np.int32))
    back = np.stack([iio.imread(tmp_path / "seq" / f"frame_{i:06d}.png") for i in range(3)])
    assert np.array_equal(back, depth)


def write_sub_filtered(writer: Png16SequenceWriter, depth: np.ndarray) -> list[np.ndarray]:
    """`depth` two frames at a time through `row_buffers` and `write_filtered`; the buffers used."""
    handed = []
    for start in range(0, len(depth), 2):
        rows = writer.row_buffers(2, *depth.shape[1:])
        assert rows.shape == (2, depth.shape[1], 1 + 2 * depth.shape[2]) and rows.dtype == np.uint8
        for i in range(2):  # PNG's Sub filter of the big-endian samples, with numpy
            image = depth[start + i].astype(">u2").view(np.uint8).reshape(depth.shape[1], -1).astype(np.int32)
            rows[i, :, 0], rows[i, :, 1:3] = 1, image[:, :2]
            rows[i, :, 3:] = (image[:, 2:] - image[:, :-2]) % 256
        writer.write_filtered(rows)
        handed.append(rows)
    return handed


def test_png16_filtered_rows_make_the_same_files_in_buffers_reused_once_encoded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    depth = rng().integers(0, 65536, size=(12, 7, 9), dtype=np.uint16)
    with Png16SequenceWriter(tmp_path / "plain") as writer:
        writer.write(depth)
    with Png16SequenceWriter(tmp_path / "rows") as writer:
        handed = write_sub_filtered(writer, depth)
        with pytest.raises(ValueError, match="uint8"):
            writer.write_filtered(np.zeros((1, 7, 18), np.uint8))  # an even row length: no 16-bit row
    # a buffer came back once its frames were encoded; never one still waiting to be
    assert len({id(r) for r in handed}) < len(handed)
    for i in range(12):
        name = f"frame_{i:06d}.png"
        assert (tmp_path / "rows" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes(), name
    monkeypatch.setattr(png, "MAX_SPARE_BYTES", 2 * 7 * 19 - 1)  # smaller than one buffer: none kept
    with Png16SequenceWriter(tmp_path / "unkept") as writer:
        assert len({id(r) for r in write_sub_filtered(writer, depth)}) == 6


def test_png_rgba_files_are_the_interleaved_images_pngs_whatever_the_planes_layout(tmp_path: Path) -> None:
    rgb, alpha = moving_disk_rgba(6, 21, 33)
    rgb[:, :, 3:9, 5:20] = rng().integers(0, 256, size=(6, 3, 6, 15), dtype=np.uint8)  # wraps in the filter
    last = torch.from_numpy(rgb).contiguous(memory_format=torch.channels_last)  # as the matte stage gives it
    for name, frames in {"planes": torch.from_numpy(rgb), "last": last}.items():
        with PngRgbaSequenceWriter(tmp_path / name) as writer:
            for start in range(0, 6, 2):  # buffers of encoded batches come back for later ones
                writer.write(frames[start:start + 2], alpha[start:start + 2])
        for i in range(6):
            image = np.ascontiguousarray(np.concatenate([rgb[i].transpose(1, 2, 0), alpha[i][..., None]], axis=2))
            assert (tmp_path / name / f"frame_{i:06d}.png").read_bytes() == encode_png(image), (name, i)


def test_mp4_muxes_audio_from_source(tmp_path: Path) -> None:
    src = MEDIA / "decord__flipping_a_pancake.mkv"  # Opus audio
    with Mp4Writer(tmp_path / "with_audio.mp4", fps=30, preset="ultrafast",
                   audio_from=src) as writer:
        writer.write(next(iter_batches(src, batch_frames=15)).frames)
    info = probe(tmp_path / "with_audio.mp4")
    assert info.has_audio and info.num_frames == 15
    with Mp4Writer(tmp_path / "silent.mp4", fps=30, preset="ultrafast",
                   audio_from=MEDIA / "h265_10bits.mp4") as writer:  # source has no audio
        writer.write(torch.zeros(3, 3, 32, 32, dtype=torch.uint8))
    assert not probe(tmp_path / "silent.mp4").has_audio
    assert leftovers(tmp_path) == ["silent.mp4", "with_audio.mp4"]


def test_mp4_audio_mux_failure_is_encode_error_with_ffmpeg_stderr(tmp_path: Path) -> None:
    writer = Mp4Writer(tmp_path / "x.mp4", fps=10, preset="ultrafast",
                       audio_from=tmp_path / "missing.m4a")
    writer.write(torch.zeros(2, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(EncodeError, match=r"muxing audio .*ffmpeg exited with code \d+; "
                                          r"stderr: .*No such file"):
        writer.close()
    assert leftovers(tmp_path) == []


def test_webm_alpha_decodes_back_within_two_levels(tmp_path: Path) -> None:
    rgb, alpha = moving_disk_rgba(12, 61, 83)  # odd size
    out = tmp_path / "matte.webm"
    with WebmAlphaWriter(out, fps=24) as writer:
        writer.write(rgb[:5], alpha[:5])
        writer.write(torch.from_numpy(rgb[5:]), torch.from_numpy(alpha[5:]))
    back_alpha = read_webm_alpha(out)
    assert back_alpha.shape == (12, 61, 83)
    assert np.abs(back_alpha.astype(np.int16) - alpha).mean() <= 2.0
    back_rgb = read_webm_rgba(out)[..., :3]
    assert np.abs(back_rgb.astype(np.int16) - rgb.transpose(0, 2, 3, 1)).mean() <= 4.0
    info = probe(out)
    assert (info.codec, info.num_frames, info.width, info.height) == ("vp9", 12, 83, 61)


def test_webm_alpha_reaches_the_encoder_exactly_from_either_rgb_layout(tmp_path: Path) -> None:
    """The matte goes to ffmpeg as its own input and is joined after the RGB conversion, so the
    encoder gets it bit for bit (swscale converting RGBA filtered it); packed and planar RGB
    give the same file."""
    rgb, alpha = moving_disk_rgba(4, 30, 44)
    raw = tmp_path / "joined.yuva"
    pipe = FfmpegPipe.raw_videos(["gbrp", "gray"], (30, 44), 24.0,
                                 ["-filter_complex", with_alpha(SDR_BT709, "yuva420p"),
                                  "-f", "rawvideo", str(raw)], timeout_s=60, what="test")
    pipe.write_frames(rgb_alpha_buffers(torch.from_numpy(rgb), torch.from_numpy(alpha), "gbrp"))
    pipe.close()
    luma, chroma = 30 * 44, 15 * 22
    joined = np.fromfile(raw, np.uint8).reshape(4, -1)
    assert np.array_equal(joined[:, luma + 2 * chroma:].reshape(4, 30, 44), alpha)
    files = []
    for name, frames in (("planar", torch.from_numpy(rgb)),
                         ("packed", torch.from_numpy(rgb.transpose(0, 2, 3, 1).copy()).permute(0, 3, 1, 2))):
        files.append(tmp_path / f"{name}.webm")
        with WebmAlphaWriter(files[-1], fps=24) as writer:
            writer.write(frames, alpha)
    assert files[0].read_bytes() == files[1].read_bytes()


@pytest.mark.parametrize("size", [(48, 64), (41, 57)])
def test_composite_mp4_is_the_frames_over_the_colour_by_their_alpha(tmp_path: Path, size) -> None:
    h, w = size
    rgb, alpha = moving_disk_rgba(9, h, w)
    out = tmp_path / "composite.mp4"
    packed = torch.from_numpy(rgb.transpose(0, 2, 3, 1).copy()).permute(0, 3, 1, 2)  # as decoded
    with CompositeMp4Writer(out, fps=24, crf=12, preset="veryfast", background=(0, 177, 64)) as writer:
        writer.write(packed[:4], alpha[:4])
        writer.write(torch.from_numpy(rgb[4:]), torch.from_numpy(alpha[4:]))  # planar: converted
    a = alpha[:, None].astype(np.float64) / 255
    expected = rgb * a + np.array([0, 177, 64]).reshape(1, 3, 1, 1) * (1 - a)
    info = probe(out)
    assert (info.num_frames, info.width, info.height) == (9, w + w % 2, h + h % 2)
    back = FrameBatch.concat(list(iter_batches(out, batch_frames=9))).frames[:, :, :h, :w].double()
    assert (back - torch.from_numpy(expected)).abs().mean() < 3.0
    behind = back[:, :, :, 0] - torch.tensor([0.0, 177.0, 64.0]).view(1, 3, 1)  # alpha 0: the colour
    assert behind.abs().mean() < 6.0  # 4:2:0 chroma mixes in column 1 (alpha 5)
    with pytest.raises(ValueError, match="alpha"):
        CompositeMp4Writer(tmp_path / "x.mp4", fps=24, background=(0, 177, 64)).write(rgb, alpha[:, :-1])


def test_read_webm_alpha_of_a_non_video_is_decode_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.webm"
    bad.write_text("nope")
    with pytest.raises(DecodeError, match="not a readable video file"):
        read_webm_alpha(bad)


# -- atomicity ------------------------------------------------------------------------------
def _png16(p: Path) -> tuple[AtomicOutput, Callable[[AtomicOutput], None]]:
    return Png16SequenceWriter(p), lambda w: w.write(np.zeros((2, 8, 8), np.uint16))


def _rgba(p: Path) -> tuple[AtomicOutput, Callable[[AtomicOutput], None]]:
    rgb, alpha = moving_disk_rgba(2, 24, 24)
    return PngRgbaSequenceWriter(p), lambda w: w.write(rgb, alpha)


def _npy(p: Path) -> tuple[AtomicOutput, Callable[[AtomicOutput], None]]:
    return NpyWriter(p, num_frames=4), lambda w: w.write(np.ones((2, 8, 8), np.float32))


def _npz(p: Path) -> tuple[AtomicOutput, Callable[[AtomicOutput], None]]:
    return NpzWriter(p, num_frames=4), lambda w: w.write(np.ones((2, 8, 8), np.float32))


def _mp4(p: Path) -> tuple[AtomicOutput, Callable[[AtomicOutput], None]]:
    return (Mp4Writer(p, fps=10, preset="ultrafast"),
            lambda w: w.write(torch.zeros(2, 3, 16, 16, dtype=torch.uint8)))


def _composite(p: Path) -> tuple[AtomicOutput, Callable[[AtomicOutput], None]]:
    rgb, alpha = moving_disk_rgba(2, 24, 24)
    return CompositeMp4Writer(p, fps=10, preset="ultrafast", background=(0, 0, 255)), lambda w: w.write(rgb, alpha)


def _webm(p: Path) -> tuple[AtomicOutput, Callable[[AtomicOutput], None]]:
    rgb, alpha = moving_disk_rgba(2, 24, 24)
    return WebmAlphaWriter(p, fps=10), lambda w: w.write(rgb, alpha)


WRITERS = {"png16": _png16, "rgba": _rgba, "npy": _npy, "npz": _npz, "mp4": _mp4, "webm": _webm,
           "composite": _composite}


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_exception_inside_with_leaves_nothing(tmp_path: Path, kind: str) -> None:
    target = tmp_path / f"out.{kind}"
    with pytest.raises(RuntimeError, match="boom"):
        writer, write = WRITERS[kind](target)
        with writer:
            write(writer)
            assert not target.exists()  # nothing under the final name while writing
            raise RuntimeError("boom")
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_abort_and_garbage_collection_leave_nothing(tmp_path: Path, kind: str) -> None:
    writer, write = WRITERS[kind](tmp_path / "aborted")
    write(writer)
    writer.abort()
    assert leftovers(tmp_path) == []
    with pytest.raises(EncodeError, match="aborted"):
        writer.close()
    forgotten, write = WRITERS[kind](tmp_path / "forgotten")
    write(forgotten)
    del forgotten  # never closed: the temp is dropped, nothing is published
    assert leftovers(tmp_path) == []


def test_close_replaces_an_existing_output(tmp_path: Path) -> None:
    old = tmp_path / "seq"
    old.mkdir()
    (old / "stale.png").write_bytes(b"old")
    with Png16SequenceWriter(old) as writer:
        writer.write(np.ones((1, 4, 4), np.uint16))
    assert leftovers(old) == ["frame_000000.png"]
    (tmp_path / "d.npy").write_bytes(b"old")
    with NpyWriter(tmp_path / "d.npy", num_frames=1) as writer:
        writer.write(np.ones((1, 2), np.float32))
    assert np.array_equal(np.load(tmp_path / "d.npy"), np.ones((1, 2), np.float32))
    assert leftovers(tmp_path) == ["d.npy", "seq"]


def test_killed_ffmpeg_is_encode_error_and_leaves_nothing(tmp_path: Path) -> None:
    rgb, alpha = moving_disk_rgba(4, 32, 32)
    writer = WebmAlphaWriter(tmp_path / "killed.webm", fps=10)
    writer.write(rgb, alpha)
    assert writer.process is not None
    writer.process.kill()
    writer.process.wait(timeout=10)
    with pytest.raises(EncodeError, match=r"encoding .*killed.webm: ffmpeg exited early"):
        writer.write(rgb, alpha)
    assert writer.closed
    assert leftovers(tmp_path) == []


@pytest.fixture
def python_sigint() -> Iterator[None]:
    """SIGINT delivered and turned into KeyboardInterrupt by Python's own handler for the test,
    whatever handler or signal mask earlier tests in this process left; restored afterwards."""
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        signal.signal(signal.SIGINT, signal.default_int_handler if handler is None else handler)


@pytest.mark.usefixtures("python_sigint")
@pytest.mark.parametrize("kind", ["npy", "webm"])
def test_ctrl_c_inside_with_leaves_nothing(tmp_path: Path, kind: str) -> None:
    writer, write = WRITERS[kind](tmp_path / f"out.{kind}")
    with pytest.raises(KeyboardInterrupt):
        with writer:
            write(writer)
            signal.raise_signal(signal.SIGINT)  # Python's default handler: KeyboardInterrupt
    assert leftovers(tmp_path) == []


CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    from vdp.io import NpyWriter
    with NpyWriter(sys.argv[1], num_frames=100) as writer:
        writer.write(np.ones((10, 64, 64), np.float32))
        print("ready", flush=True)
        time.sleep(60)
        writer.write(np.ones((90, 64, 64), np.float32))
""")


def test_killed_process_never_publishes_a_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "depth.npy"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(target)], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        assert len(leftovers(tmp_path)) == 1 and not target.exists()  # the temp only
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
    # No cleanup ran: the hidden temp may stay, but nothing appears under the final name.
    assert not target.exists()
    assert [name.startswith(".depth.npy.") for name in leftovers(tmp_path)] == [True]
