"""Colour on real encoded files: BT.709 colour bars decode with their own matrix and range, every
writer converts with BT.709 and tags its stream, and players (ffmpeg honouring the tags) see the
colours vdp wrote."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from vdp.io import Mp4Writer, WebmAlphaWriter, iter_batches, read_webm_rgba
from vdp.io._ffmpeg import ffmpeg_exe
from vdp.io.colour import SDR_BT709, Colour, hdr_output_colour, parse_colour, source_colour
from vdp.io.writers.prores import ProresAlphaWriter, read_rgba16
from vdp.types import FrameBatch

W, H, FRAMES = 320, 240, 4
BARS = f"testsrc2=size={W}x{H}:rate=24"
TAGS_709 = ["-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709"]


def ffmpeg(*args: str) -> bytes:
    return subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *args], check=True, timeout=120,
                          capture_output=True).stdout


def player_rgb(path: Path) -> np.ndarray:
    """What a player shows: ffmpeg's own RGB conversion, honouring the stream's tags."""
    raw = ffmpeg("-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-")
    return np.frombuffer(raw, np.uint8).reshape(-1, H, W, 3)


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    """The colour bars as RGB ``[T,H,W,3]``, straight from the generator (nothing encoded)."""
    raw = ffmpeg("-f", "lavfi", "-i", BARS, "-frames:v", str(FRAMES), "-f", "rawvideo",
                 "-pix_fmt", "rgb24", "-")
    return np.frombuffer(raw, np.uint8).reshape(FRAMES, H, W, 3)


def bars_file(folder: Path, range_: str) -> Path:
    """BT.709 colour bars, H.264 near-lossless, tagged (limited ``tv`` or full ``pc`` range)."""
    path = folder / f"bars709_{range_}.mp4"
    ffmpeg("-f", "lavfi", "-i", BARS, "-frames:v", str(FRAMES),
           "-vf", f"scale=out_color_matrix=bt709:out_range={range_},format=yuv420p,setparams="
                  f"color_primaries=bt709:color_trc=bt709:colorspace=bt709:range={range_}",
           "-c:v", "libx264", "-crf", "4", *TAGS_709, "-color_range", range_, str(path))
    return path


def green_like(rgb: np.ndarray) -> np.ndarray:
    """Mask of strongly green pixels, like the (14,222,4) that BT.601 turned into (0,191,0)."""
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    return (g > 180) & (r < 60) & (b < 60)


@pytest.mark.parametrize("range_", ["tv", "pc"])
def test_bt709_source_decodes_with_its_own_matrix_and_range(tmp_path: Path, truth: np.ndarray,
                                                             range_: str) -> None:
    path = bars_file(tmp_path, range_)
    assert source_colour(str(path)) == Colour("bt709", "bt709", "bt709", range_)
    frames = FrameBatch.concat(list(iter_batches(path))).frames.permute(0, 2, 3, 1).numpy()
    err = np.abs(frames.astype(float) - truth).mean()
    assert err < 1.5, err  # BT.601 decoding of the same file is off by ~4.6 levels
    mask = green_like(truth[0])
    assert mask.sum() > 100
    assert np.abs(frames[0][mask].astype(float) - truth[0][mask]).mean() < 4


def test_mp4_is_bt709_tagged_and_players_see_the_written_colours(tmp_path: Path,
                                                                  truth: np.ndarray) -> None:
    out = tmp_path / "out.mp4"
    with Mp4Writer(out, fps=24, crf=4, preset="ultrafast", encoder="cpu") as w:
        w.write(torch.from_numpy(truth.copy()).permute(0, 3, 1, 2))  # channels-last: packed RGB
    assert source_colour(str(out)) == SDR_BT709
    shown = player_rgb(out)
    assert np.abs(shown.astype(float) - truth).mean() < 2.0
    mask = green_like(truth[0])
    assert green_like(shown[0])[mask].mean() > 0.95  # green stays green


def test_planar_and_packed_frames_encode_the_same(tmp_path: Path, truth: np.ndarray) -> None:
    planar = torch.from_numpy(np.ascontiguousarray(truth.transpose(0, 3, 1, 2)))
    packed = torch.from_numpy(truth.copy()).permute(0, 3, 1, 2)
    for name, frames in (("planar", planar), ("packed", packed), ("mixed", None)):
        with Mp4Writer(tmp_path / f"{name}.mp4", fps=24, crf=0, preset="ultrafast", encoder="cpu") as w:
            if frames is None:  # a batch in the other layout than the first is converted
                w.write(planar[:2])
                w.write(packed[2:])
            else:
                w.write(frames)
    a, b, c = (player_rgb(tmp_path / f"{n}.mp4") for n in ("planar", "packed", "mixed"))
    assert np.array_equal(a, b) and np.array_equal(a, c)


def test_hevc_and_yuv444_are_tagged_too(tmp_path: Path, truth: np.ndarray) -> None:
    frames = torch.from_numpy(np.ascontiguousarray(truth.transpose(0, 3, 1, 2)))
    for name, kw in (("hevc", {"codec": "hevc"}), ("444", {"pixel_format": "yuv444p"})):
        with Mp4Writer(tmp_path / f"{name}.mp4", fps=24, crf=4, preset="ultrafast", encoder="cpu",
                       **kw) as w:
            w.write(frames)
        assert source_colour(str(tmp_path / f"{name}.mp4")) == SDR_BT709
        assert np.abs(player_rgb(tmp_path / f"{name}.mp4").astype(float) - truth).mean() < 2.0


def test_webm_and_prores_are_bt709_tagged_and_close(tmp_path: Path, truth: np.ndarray) -> None:
    rgb = np.ascontiguousarray(truth.transpose(0, 3, 1, 2))
    alpha = np.full((FRAMES, H, W), 255, np.uint8)
    with WebmAlphaWriter(tmp_path / "a.webm", fps=24, crf=4) as w:
        w.write(rgb, alpha)
    with ProresAlphaWriter(tmp_path / "a.mov", fps=24) as p:
        p.write(rgb, alpha)
    for name in ("a.webm", "a.mov"):
        assert source_colour(str(tmp_path / name)) == SDR_BT709, name
    webm = read_webm_rgba(tmp_path / "a.webm")[..., :3]
    prores = (read_rgba16(tmp_path / "a.mov")[..., :3] / 257.0)
    assert np.abs(webm.astype(float) - truth).mean() < 2.0
    assert np.abs(prores - truth).mean() < 1.0


def test_hdr_colour_needs_hevc_and_tags_main10(tmp_path: Path, truth: np.ndarray) -> None:
    pq = hdr_output_colour(Colour("bt2020", "smpte2084", "bt2020nc", "tv"))
    with pytest.raises(ValueError, match="HEVC"):
        Mp4Writer(tmp_path / "x.mp4", fps=24, colour=pq, bit_depth=10)
    with Mp4Writer(tmp_path / "pq.mp4", fps=24, codec="hevc", colour=pq, bit_depth=10,
                   preset="ultrafast", encoder="cpu") as w:
        w.write(torch.from_numpy(np.ascontiguousarray(truth.transpose(0, 3, 1, 2))))
    info = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(tmp_path / "pq.mp4")],
                          capture_output=True, text=True).stderr
    assert "Main 10" in info and "yuv420p10le" in info
    assert source_colour(str(tmp_path / "pq.mp4")) == pq


@pytest.mark.parametrize("line, colour", [
    ("Stream #0:0[0x1](und): Video: h264 (High), yuv420p(tv, bt709, progressive), 320x240",
     Colour("bt709", "bt709", "bt709", "tv")),
    ("Stream #0:0: Video: hevc (Main 10), yuv420p10le(tv, bt2020nc/bt2020/smpte2084), 64x64",
     Colour("bt2020", "smpte2084", "bt2020nc", "tv")),
    ("Stream #0:0: Video: h264, yuvj420p(pc, bt709/unknown/unknown, progressive), 64x64",
     Colour("", "", "bt709", "pc")),
    ("Stream #0:0: Video: h264 (High), yuv420p(progressive), 64x64", Colour()),
    ("no video here", Colour()),
])
def test_parse_colour_reads_ffmpegs_stream_line(line: str, colour: Colour) -> None:
    assert parse_colour(line) == colour


def test_yuv420_planes_go_in_as_they_are_and_bad_use_is_refused(tmp_path: Path) -> None:
    t, h, w = 2, 64, 96
    y = torch.full((t, h, w), 180, dtype=torch.uint8)
    u = torch.full((t, h // 2, w // 2), 60, dtype=torch.uint8)
    v = torch.full((t, h // 2, w // 2), 200, dtype=torch.uint8)
    with Mp4Writer(tmp_path / "yuv.mp4", fps=24, crf=0, preset="ultrafast", encoder="cpu") as wr:
        wr.write_yuv420(y, u, v)
        with pytest.raises(ValueError, match="cannot take RGB"):
            wr.write(torch.zeros(1, 3, h, w, dtype=torch.uint8))
    assert source_colour(str(tmp_path / "yuv.mp4")) == SDR_BT709
    raw = ffmpeg("-i", str(tmp_path / "yuv.mp4"), "-f", "rawvideo", "-pix_fmt", "yuv420p", "-")
    planes = np.frombuffer(raw, np.uint8).reshape(t, -1)
    assert (planes[:, :h * w] == 180).all() and (planes[:, h * w:h * w * 5 // 4] == 60).all()
    with pytest.raises(ValueError, match="even"):
        Mp4Writer(tmp_path / "odd.mp4", fps=24).write_yuv420(y[:, :63], u, v)
    with pytest.raises(ValueError, match="yuv420p writer"):
        Mp4Writer(tmp_path / "444.mp4", fps=24, pixel_format="yuv444p").write_yuv420(y, u, v)
    rgb_first = Mp4Writer(tmp_path / "rgb.mp4", fps=24, preset="ultrafast", encoder="cpu")
    rgb_first.write(torch.zeros(1, 3, h, w, dtype=torch.uint8))
    with pytest.raises(ValueError, match="given RGB"):
        rgb_first.write_yuv420(y, u, v)
    rgb_first.abort()
