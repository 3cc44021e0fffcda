"""HDR sources (10-bit HEVC, PQ / HDR10 and HLG, made with ffmpeg at test time): probe reports
their colour, decoding tone-maps them to SDR BT.709 with a named operator (not flat grey), and
``hdr="keep"`` decodes the HDR signal as it is."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from vdp.io import iter_batches, probe
from vdp.io._ffmpeg import ffmpeg_exe
from vdp.io.tonemap import TONEMAP_OPERATOR
from vdp.types import FrameBatch

W, H, FRAMES = 192, 108, 6
TRANSFERS = {"pq": "smpte2084", "hlg": "arib-std-b67"}


def make_hdr(path: Path, transfer: str) -> Path:
    """Colour bars converted to an HDR signal (BT.2020, `transfer`, white at BT.2408's 203 cd/m2), 10-bit
    HEVC Main10 tagged as such."""
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate=24",
                    "-frames:v", str(FRAMES), "-vf",
                    "zscale=transferin=bt709:primariesin=bt709:matrixin=bt709:rangein=limited"
                    f":transfer={transfer}:primaries=bt2020:matrix=2020_ncl:range=limited:npl=203,"
                    "format=yuv420p10le", "-c:v", "libx265", "-x265-params", "log-level=error",
                    "-crf", "10", "-color_primaries", "bt2020", "-color_trc", transfer,
                    "-colorspace", "bt2020nc", "-color_range", "tv", str(path)],
                   check=True, timeout=120)
    return path


@pytest.fixture(scope="module", params=sorted(TRANSFERS))
def hdr_clip(request, tmp_path_factory) -> tuple[Path, str]:
    transfer = TRANSFERS[request.param]
    return make_hdr(tmp_path_factory.mktemp("hdr") / f"{request.param}.mp4", transfer), transfer


def luma_of(frames: torch.Tensor) -> torch.Tensor:
    f = frames.float()
    return 0.2126 * f[:, 0] + 0.7152 * f[:, 1] + 0.0722 * f[:, 2]


def decode(path: Path, **kw) -> torch.Tensor:
    return FrameBatch.concat(list(iter_batches(path, batch_frames=4, **kw))).frames


def test_probe_reports_the_source_colour_and_the_operator(hdr_clip) -> None:
    path, transfer = hdr_clip
    info = probe(path)
    assert (info.colour_primaries, info.colour_transfer, info.colour_matrix, info.colour_range) \
        == ("bt2020", transfer, "bt2020nc", "tv")
    assert info.bit_depth == 10 and info.tone_mapping == TONEMAP_OPERATOR
    assert "hable" in info.tone_mapping
    assert any("tone-mapped to SDR BT.709" in w and transfer in w for w in info.warnings)
    kept = probe(path, hdr="keep")
    assert kept.tone_mapping == "" and kept.warnings == ()
    assert kept.to_dict()["colour_transfer"] == transfer


def test_tone_mapped_frames_are_not_flat_grey(hdr_clip) -> None:
    path, transfer = hdr_clip
    sdr, raw = decode(path), decode(path, hdr="keep")
    assert sdr.shape == raw.shape == (FRAMES, 3, H, W)
    # Full tonal range: blacks black, whites bright, well spread (a flat grey failure has a
    # luma std of a few levels). The PQ signal read as 8-bit SDR is compressed towards grey
    # (luma std ~35 against ~66 tone-mapped); HLG read raw is closer to SDR but lifts blacks.
    luma = luma_of(sdr)
    assert float(luma.std()) > 40
    assert float(torch.quantile(luma.flatten()[::7], 0.02)) < 24
    assert float(torch.quantile(luma.flatten()[::7], 0.98)) > 150
    if transfer == "smpte2084":
        assert float(luma.std()) > 1.25 * float(luma_of(raw).std())
    # A batch from the middle decodes the same frames as the full run.
    mid = FrameBatch.concat(list(iter_batches(path, batch_frames=2, start_frame=3))).frames
    assert torch.equal(mid, sdr[3:])


def test_keep_decodes_the_hdr_signal_as_ffmpeg_does(hdr_clip) -> None:
    path, _ = hdr_clip
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], check=True, capture_output=True, timeout=60).stdout
    ff = np.frombuffer(raw, np.uint8).reshape(FRAMES, H, W, 3)
    kept = decode(path, hdr="keep").permute(0, 2, 3, 1).numpy()
    assert np.abs(kept.astype(float) - ff).mean() < 1.0


def test_unknown_hdr_mode_is_a_value_error(hdr_clip) -> None:
    with pytest.raises(ValueError, match="tonemap, keep"):
        probe(hdr_clip[0], hdr="hdr10")


@pytest.fixture(scope="module")
def sdr_then_hdr(tmp_path_factory) -> Path:
    """An MKV whose first video stream is SDR BT.709 (a plain grey card) and second the PQ clip,
    marked as the default one (ffmpeg picks it)."""
    folder = tmp_path_factory.mktemp("two")
    hdr = make_hdr(folder / "pq.mp4", TRANSFERS["pq"])
    sdr = folder / "grey.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", f"color=c=gray:size={W}x{H}:rate=24",
                    "-frames:v", str(FRAMES), "-vf", "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(sdr)], check=True, timeout=120)
    out = folder / "sdr_then_hdr.mkv"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(sdr), "-i", str(hdr), "-map", "0:v",
                    "-map", "1:v", "-c", "copy", "-disposition:v:0", "0", "-disposition:v:1", "default",
                    str(out)], check=True, timeout=120)
    return out


def test_the_chosen_streams_colour_is_read_and_tone_mapped(sdr_then_hdr) -> None:
    # ffmpeg's default pick here is the HDR stream (1): its colour, not the first stream's
    default = probe(sdr_then_hdr)
    assert default.video_stream == 1 and default.streams_used["video"]["codec"] == "hevc"
    assert (default.colour_primaries, default.colour_transfer) == ("bt2020", "smpte2084")
    assert default.tone_mapping == TONEMAP_OPERATOR and default.bit_depth == 10
    sdr = probe(sdr_then_hdr, video_stream=0)
    assert sdr.colour_transfer == "bt709" and sdr.tone_mapping == "" and sdr.bit_depth == 8
    # the tone-mapped frames are the HDR stream's colour bars, not the first stream's grey card
    pq = decode(sdr_then_hdr.with_name("pq.mp4"))
    for chosen in ({}, {"stream_index": 1}):
        frames = decode(sdr_then_hdr, **chosen)
        assert frames.shape == (FRAMES, 3, H, W) and float(luma_of(frames).std()) > 40
        assert torch.equal(frames, pq)
    grey = decode(sdr_then_hdr, stream_index=0)
    assert float(luma_of(grey).std()) < 3
