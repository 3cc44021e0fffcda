"""Colour of every encoded output kind, on real files: BT.709 matrix, limited range and tags
(checked with ffprobe where installed, else ffmpeg's stream line), the source's colours kept
through an output that shows the video, and HDR input through a whole job (tone-mapped by
default, 10-bit HEVC with the source's tags when the spec keeps HDR)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from vdp import catalog
from vdp.engine.job import run_job
from vdp.io import iter_batches, probe
from vdp.io._ffmpeg import ffmpeg_exe
from vdp.io.colour import Colour, source_colour
from vdp.io.tonemap import TONEMAP_OPERATOR
from vdp.spec import JobSpec, OutputSpec, StereoSpec, output_name
from vdp.stages.stereo import StereoStage
from vdp.types import FrameBatch
from tests.io.test_hdr import make_hdr

W, H, FRAMES = 160, 96, 6
ENCODED = (".mp4", ".webm", ".mov")
BT709 = Colour("bt709", "bt709", "bt709", "tv")


def encoded_kinds() -> list[str]:
    return [e.kind for e in catalog.outputs() if output_name(OutputSpec(kind=e.kind)).endswith(ENCODED)]


def stream_colour(path: Path) -> Colour:
    """The video stream's colour tags as ffprobe reads them (ffmpeg's stream line without it)."""
    exe = shutil.which("ffprobe")
    if exe is None:
        return source_colour(str(path))
    out = subprocess.run([exe, "-v", "error", "-select_streams", "v:0", "-show_streams", "-of", "json",
                          str(path)], capture_output=True, check=True, timeout=60).stdout
    s = json.loads(out)["streams"][0]
    return Colour(s.get("color_primaries", ""), s.get("color_transfer", ""), s.get("color_space", ""),
                  s.get("color_range", ""))


def player_rgb(path: Path, w: int, h: int) -> np.ndarray:
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt",
                          "rgb24", "-"], capture_output=True, check=True, timeout=60).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


@pytest.fixture(scope="module")
def bars(tmp_path_factory) -> Path:
    """BT.709 colour bars, near-lossless H.264, tagged BT.709 limited range."""
    path = tmp_path_factory.mktemp("bars") / "bars709.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate=24",
                    "-frames:v", str(FRAMES), "-vf", "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p,"
                    "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv",
                    "-c:v", "libx264", "-crf", "4", str(path)], check=True, timeout=120)
    return path


@pytest.fixture(scope="module")
def written(bars: Path, tmp_path_factory) -> dict[str, Path]:
    """Every encoded output kind written from the bars (depth: a ramp; alpha: opaque with a
    soft edge; stereo from the ramp)."""
    out_dir = tmp_path_factory.mktemp("out")
    info = probe(bars)
    kinds = encoded_kinds()
    outputs = {k: catalog.output(k).output_class()(OutputSpec(kind=k), out_dir / output_name(OutputSpec(kind=k)),
                                                   info, num_frames=FRAMES) for k in kinds}
    stereo = StereoStage(StereoSpec(divergence=2.0, lookahead_frames=2))
    stereo.setup("cpu")
    state = stereo.init_state(info)

    def emit(batch: FrameBatch | None, needs_stereo: bool) -> None:
        if batch is None or not len(batch):
            return
        for k, o in outputs.items():
            if ("stereo" in catalog.output(k).needs) == needs_stereo:
                o.write(batch)

    for batch in iter_batches(bars, batch_frames=3):
        ramp = torch.linspace(0, 1, H).view(1, -1, 1).expand(len(batch), -1, W).contiguous()
        alpha = torch.ones(len(batch), H, W)
        alpha[..., :8] = torch.linspace(0, 1, 8)
        batch = batch.with_layers(depth=ramp, alpha=alpha, foreground=batch.frames.contiguous())
        emit(batch, False)
        out, state = stereo.process(batch, state)
        emit(out, True)
    emit(stereo.flush(state), True)
    return {k: o.close() for k, o in outputs.items()}


def test_every_encoded_kind_is_tagged_bt709_limited_range(written: dict[str, Path]) -> None:
    assert {"depth_color_mp4", "depth_preview_mp4", "sbs_full", "vr180_sbs", "composite_mp4",
            "alpha_mp4", "foreground_webm", "prores4444_mov"} <= set(written)
    for kind, path in written.items():
        assert stream_colour(path) == BT709, kind


def test_the_preview_shows_the_source_colours(bars: Path, written: dict[str, Path]) -> None:
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate=24",
                          "-frames:v", str(FRAMES), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True, timeout=60).stdout
    truth = np.frombuffer(raw, np.uint8).reshape(FRAMES, H, W, 3).astype(float)
    for kind in ("depth_preview_mp4", "composite_mp4", "foreground_mp4"):
        shown = player_rgb(written[kind], 2 * W if kind == "depth_preview_mp4" else W, H)[..., :W, :]
        assert shown.shape[0] == FRAMES
        cols = slice(8, None)  # composite: the soft alpha edge is blended with the background
        err = np.abs(shown[:, :, cols].astype(float) - truth[:, :, cols]).mean()
        assert err < 2.5, (kind, err)  # BT.601 without tags: ~4.6
        t = truth[0, :, cols]
        green = (t[..., 1] > 180) & (t[..., 0] < 60) & (t[..., 2] < 60)
        s = shown[0, :, cols].astype(int)
        assert green.sum() > 50
        assert ((s[..., 1] > 180) & (s[..., 0] < 60) & (s[..., 2] < 60))[green].mean() > 0.9, kind


def _hdr_job(src: Path, out: Path, **extra) -> dict:
    spec = JobSpec.parse({"input": str(src), "stages": {"depth": {"model": "vits", "input_size": 28,
                                                                    "synthetic_weights": True}},
                          "outputs": [{"kind": "depth_preview_mp4"}],
                          "resources": {"batch_frames": 4, "threads": 1}, **extra})
    run_job(spec, out, local=True)
    return json.loads((out / "report.json").read_text())


def test_hdr_job_is_tone_mapped_and_the_report_names_the_operator(tmp_path: Path) -> None:
    src = make_hdr(tmp_path / "pq.mp4", "smpte2084")
    report = _hdr_job(src, tmp_path / "out")
    assert report["status"] == "succeeded"
    assert report["input"]["colour_transfer"] == "smpte2084"
    assert report["input"]["tone_mapping"] == TONEMAP_OPERATOR and "hable" in TONEMAP_OPERATOR
    assert any("tone-mapped" in w for w in report["warnings"])
    preview = tmp_path / "out" / "depth_preview.mp4"
    assert stream_colour(preview) == BT709
    rgb = player_rgb(preview, 2 * 192, 108)[..., :192, :].astype(float)
    luma = 0.2126 * rgb[..., 0] + 0.7152 * rgb[..., 1] + 0.0722 * rgb[..., 2]
    assert luma.std() > 40  # not flat grey


def test_hdr_job_keeping_hdr_writes_main10_hevc_with_the_source_tags(tmp_path: Path) -> None:
    src = make_hdr(tmp_path / "hlg.mp4", "arib-std-b67")
    report = _hdr_job(src, tmp_path / "out", hdr="keep")
    assert report["status"] == "succeeded" and report["input"]["tone_mapping"] == ""
    preview = tmp_path / "out" / "depth_preview.mp4"
    assert stream_colour(preview) == Colour("bt2020", "arib-std-b67", "bt2020nc", "tv")
    line = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(preview)], capture_output=True,
                          text=True).stderr
    assert "hevc (Main 10)" in line and "yuv420p10le" in line


def test_depth_colour_mp4_from_yuv_tables_shows_the_colourised_rgb(tmp_path: Path) -> None:
    from vdp.outputs.colormap import Colouriser, StableRange

    t, h, w = 4, 96, 160
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    depth = torch.stack([(xx * 0.8 + yy * 0.2 + 0.05 * k) for k in range(t)])
    info = probe_like(tmp_path, w, h)
    out = catalog.output("depth_color_mp4").output_class()(OutputSpec(kind="depth_color_mp4"),
                                                          tmp_path / "depth_color.mp4", info, num_frames=t)
    batch = FrameBatch(torch.zeros(t, 3, h, w, dtype=torch.uint8), torch.arange(t),
                       torch.arange(t, dtype=torch.float64) / 24, layers={"depth": depth})
    out.write(batch)
    path = out.close()
    assert out.writer.encoder_used and stream_colour(path) == BT709
    rgb = Colouriser("turbo", StableRange(low_pct=2.0, high_pct=98.0, margin=0.1))(depth)
    shown = player_rgb(path, w, h).astype(float)
    err = np.abs(shown - rgb.permute(0, 2, 3, 1).numpy()).mean()
    assert err < 2.5, err


def probe_like(tmp: Path, w: int, h: int):
    from vdp.types import VideoInfo

    return VideoInfo(path=str(tmp / "none.mp4"), num_frames=4, fps=24.0, duration_seconds=4 / 24,
                     width=w, height=h, codec="h264")
