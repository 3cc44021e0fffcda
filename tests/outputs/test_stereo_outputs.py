"""Stereo outputs: every kind plays with the source's audio, has the right frame layout and
codec (HEVC where H.264 decoders stop), and lasts as long as the source."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from tests.conftest import MEDIA
from vdp.io import iter_batches, probe
from vdp.io._ffmpeg import run_ffmpeg
from vdp import catalog
from vdp.outputs.stereo import choose_codec
from vdp.spec import OutputSpec, StereoSpec, output_name

STEREO_KINDS = [e.kind for e in catalog.outputs() if e.needs == ("stereo",)]


def stereo_output(kind: str):
    """The class that writes output `kind` (from the catalog)."""
    return catalog.output(kind).output_class()
from vdp.lift.camera import Intrinsics
from vdp.stages.stereo import StereoStage
from vdp.stereo.equirect import eye_side
from vdp.types import FrameBatch, VideoInfo

ROOFTOP = MEDIA / "androidx__sample_with_increasing_timestamps_360p.mp4"  # AAC audio
KITCHEN = MEDIA / "decord__flipping_a_pancake.mkv"                        # Opus audio


def make_source(tmp: Path, src: Path, name: str, size: str, frames: int = 15,
                audio_extra_s: float = 0.1) -> Path:
    """A short clip of `src` scaled to `size` (``WxH``) at 30 fps, with its audio (re-encoded in
    the source's codec family) lasting `audio_extra_s` longer than the video."""
    out = tmp / name
    fps = 30
    audio_codec = "libopus" if name.endswith(".mkv") else "aac"
    run_ffmpeg(["-y", "-i", str(src),
                "-vf", f"scale={size.replace('x', ':')},fps={fps},trim=end_frame={frames}",
                "-af", f"atrim=end={frames / fps + audio_extra_s}", "-c:v", "libx264",
                "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", audio_codec, str(out)],
               timeout_s=120, what="making a test source")
    return out


def ffprobe_streams(path: Path) -> list[dict]:
    exe = shutil.which("ffprobe")
    if exe is None:
        return []
    out = subprocess.run([exe, "-v", "error", "-show_streams", "-of", "json", str(path)],
                         capture_output=True, check=True, timeout=60).stdout
    return json.loads(out)["streams"]


def render(source: Path, kinds: list[str], out_dir: Path, synthetic: bool = False) -> dict[str, Path]:
    """Stereo from a depth ramp (near at the bottom), written as every kind in `kinds`."""
    info = probe(source)
    stage = StereoStage(StereoSpec(divergence=3.0, lookahead_frames=3))
    stage.setup("cpu")
    state = stage.init_state(info)
    outputs = {k: stereo_output(k)(OutputSpec(kind=k), out_dir / output_name(OutputSpec(kind=k)),
                                         info, num_frames=info.num_frames, synthetic=synthetic)
               for k in kinds}

    def emit(batch: FrameBatch | None) -> None:
        if batch is not None and len(batch):
            for o in outputs.values():
                o.write(batch)

    for batch in iter_batches(source, batch_frames=4):
        ramp = torch.linspace(0, 1, batch.height).view(1, -1, 1).expand(len(batch), -1, batch.width)
        out, state = stage.process(batch.with_layers(depth=ramp.contiguous()), state)
        emit(out)
    emit(stage.flush(state))
    return {k: o.close() for k, o in outputs.items()}


@pytest.mark.parametrize("source_clip", [ROOFTOP, KITCHEN], ids=["aac", "opus"])
def test_every_kind_plays_with_audio_and_source_duration(tmp_path, source_clip):
    src = make_source(tmp_path, source_clip, "src.mkv" if source_clip == KITCHEN else "src.mp4",
                      "160x90")
    src_info = probe(src)
    assert src_info.has_audio
    paths = render(src, STEREO_KINDS, tmp_path / "out")
    side = eye_side(Intrinsics.from_hfov(160, 90, 70.0))  # VR180: the default camera's pi * f
    sizes = {"sbs_full": (320, 90), "sbs_half": (160, 90), "tb_full": (160, 180),
             "tb_half": (160, 90), "anaglyph": (160, 90), "sbs_cross": (320, 90),
             "anaglyph_444": (160, 90), "vr180_sbs": (2 * side, side)}
    assert set(paths) == set(sizes)  # a new stereo kind gets its size here
    frame = 1 / src_info.fps
    for kind, path in paths.items():
        assert path.name == output_name(OutputSpec(kind=kind))
        info = probe(path)
        assert info.has_audio, kind
        assert (info.width, info.height) == sizes[kind]
        assert info.codec == "h264"
        assert info.num_frames == src_info.num_frames
        assert abs(info.duration_seconds - src_info.duration_seconds) <= frame + 1e-6
        streams = {s["codec_type"]: s for s in ffprobe_streams(path)}
        if streams:  # ffprobe present: the audio stream's own duration matches too
            assert streams["audio"]["codec_name"] in ("aac", "opus")
            assert abs(float(streams["audio"]["duration"]) - src_info.duration_seconds) \
                <= frame + 0.03  # audio ends on a packet boundary (~21 ms)


def test_every_frame_is_kept_when_the_audio_ends_early(tmp_path):
    src = make_source(tmp_path, ROOFTOP, "src.mp4", "160x90", audio_extra_s=-0.02)
    paths = render(src, ["sbs_half"], tmp_path / "out")
    assert probe(paths["sbs_half"]).num_frames == probe(src).num_frames


def test_wide_frames_are_hevc_tagged_hvc1(tmp_path):
    assert choose_codec(3840, 1080) == "h264"   # full SBS from 1080p
    assert choose_codec(3840, 2160) == "h264"   # half SBS from 4K
    assert choose_codec(7680, 2160) == "hevc"   # full SBS from 4K
    assert choose_codec(3840, 4320) == "hevc"   # full TB from 4K
    assert choose_codec(4096, 2304) == "h264" and choose_codec(4112, 64) == "hevc"
    src = make_source(tmp_path, ROOFTOP, "wide.mp4", "2064x48", frames=6)
    paths = render(src, ["sbs_full", "tb_full"], tmp_path / "out")
    wide, tall = probe(paths["sbs_full"]), probe(paths["tb_full"])
    assert (wide.codec, wide.width, wide.height, wide.has_audio) == ("hevc", 4128, 48, True)
    assert (tall.codec, tall.width, tall.height, tall.has_audio) == ("h264", 2064, 96, True)
    streams = ffprobe_streams(paths["sbs_full"])
    if streams:
        video = next(s for s in streams if s["codec_type"] == "video")
        assert video["codec_tag_string"] == "hvc1"


def test_views_land_in_the_right_places(tmp_path):
    """Left view left/top, right view right/bottom: decoded output vs the layer."""
    info = VideoInfo(str(tmp_path / "none.mp4"), 2, 25.0, 0.08, 64, 32, "raw")
    stereo = torch.zeros(2, 2, 3, 32, 64, dtype=torch.uint8)
    stereo[:, 0, 0] = 220  # left view red
    stereo[:, 1, 2] = 220  # right view blue
    batch = FrameBatch(torch.zeros(2, 3, 32, 64, dtype=torch.uint8), torch.arange(2),
                       torch.arange(2) / 25.0, {"stereo": stereo})
    for kind in ("sbs_full", "tb_full", "anaglyph"):
        out = stereo_output(kind)(OutputSpec(kind=kind, crf=0), tmp_path / f"{kind}.mp4", info)
        out.write(batch)
        frames = next(iter_batches(out.close(), batch_frames=2)).frames.float()
        if kind == "sbs_full":
            assert frames[0, 0, :, :64].mean() > 180 and frames[0, 2, :, 64:].mean() > 180
        elif kind == "tb_full":
            assert frames[0, 0, :32].mean() > 180 and frames[0, 2, 32:].mean() > 180
        else:  # red left view -> red channel, blue right view -> green/blue channels
            assert frames[0, 0].mean() > 80 and frames[0, 2].mean() > 150


def test_abort_leaves_nothing_and_synthetic_depth_is_stamped(tmp_path):
    info = VideoInfo(str(tmp_path / "none.mp4"), 2, 25.0, 0.08, 64, 32, "raw")
    stereo = torch.full((2, 2, 3, 32, 64), 100, dtype=torch.uint8)
    batch = FrameBatch(torch.zeros(2, 3, 32, 64, dtype=torch.uint8), torch.arange(2),
                       torch.arange(2) / 25.0, {"stereo": stereo})
    out = stereo_output("sbs_half")(OutputSpec(kind="sbs_half"), tmp_path / "a.mp4", info,
                                          synthetic=True)
    left, _ = out.views(batch)
    assert not torch.equal(left, stereo[:, 0])  # the banner
    out.write(batch)
    out.abort()
    assert list(tmp_path.iterdir()) == []
    bad = FrameBatch(batch.frames, batch.indices, batch.pts_seconds, {"stereo": stereo.float()})
    with pytest.raises(ValueError, match="stereo"):
        out.views(bad)
