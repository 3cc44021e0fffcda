"""Checks before any stage starts: frame shape and the memory budget, on real probed files."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from vdp.engine.job import run_job
from vdp.engine.plan import StagePlan
from vdp.engine.preflight import check_input, estimate_encoder_memory_mb, estimate_frame_memory_mb
from vdp.errors import InputError, SpecError
from vdp.io import probe
from vdp.io._ffmpeg import ffmpeg_exe
from vdp.spec import JobSpec
from vdp.types import VideoInfo
from tests.engine.stages_for_tests import BatchSizeStage


def clip(tmp_path: Path, width: int, height: int, frames: int = 2) -> Path:
    path = tmp_path / f"clip_{width}x{height}.mkv"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"color=c=gray:size={width}x{height}:rate=25", "-frames:v", str(frames),
                    "-c:v", "ffv1", str(path)], check=True, timeout=60)
    return path


def depth_spec(path: Path, **resources) -> JobSpec:
    return JobSpec.parse({"input": str(path), "stages": {"depth": {"synthetic_weights": True,
                                                                    "input_size": 56}},
                          "outputs": [{"kind": "depth_preview_mp4"}], "resources": resources})


def test_extreme_aspect_ratio_fails_before_any_stage_with_source_size(tmp_path: Path) -> None:
    path = clip(tmp_path, 4000, 16)
    with pytest.raises(InputError, match=r"clip_4000x16.mkv: 4000x16: aspect ratio 250.0:1"):
        run_job(depth_spec(path), tmp_path / "out", local=True)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["status"] == "failed" and "4000x16" in report["error"]
    assert report["stages"] == {} or all(s["frames_done"] == 0 for s in report["stages"].values())


def test_tiny_frames_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"8x8: each side must be between 16 and 16384"):
        check_input(depth_spec(clip(tmp_path, 16, 16)), probe(clip(tmp_path, 8, 8)))


def test_memory_budget_is_checked_before_running(tmp_path: Path) -> None:
    path = clip(tmp_path, 3840, 2160)
    info = probe(path)
    need = estimate_frame_memory_mb(depth_spec(path), info)
    # 4K: batches of 8 frames (at most 2**26 pixels), so (2*8 + 32 held frames) x (3 + 4 bytes)
    # + 8 x 6 bytes of preview, per pixel, and the preview's x265 encoder (7680x2160: 60 MB + 78
    # bytes per pixel)
    assert depth_spec(path).resources.frames_per_batch(3840, 2160) == 8
    encoder = 60 + 78 * 7680 * 2160 / 2**20
    assert need == pytest.approx(3840 * 2160 * (48 * 7 + 8 * 6) / 2**20 + encoder)
    with pytest.raises(InputError, match=r"3840x2160: .* need about \d+ MB .*\d+ MB of it the encoders; "
                                         r"resources.memory_budget_mb is 1000"):
        check_input(depth_spec(path, memory_budget_mb=1000), info)
    check_input(depth_spec(path, memory_budget_mb=need + 1), info)
    small = depth_spec(path, memory_budget_mb=need * 0.8, batch_frames=1)
    assert estimate_frame_memory_mb(small, info) < need * 0.8
    check_input(small, info)


def test_memory_estimate_counts_each_video_encoder(tmp_path: Path) -> None:
    # 8K: the colour video is 3840x2160 H.264 by default, HEVC at the source's size (x265 ~2.5 GB);
    # an NPZ has no encoder; NVENC's memory is the GPU's; the preview's halves are capped at
    # 3840 px (7680x2160 HEVC)
    info = VideoInfo(path="8k.mp4", num_frames=6, fps=24.0, duration_seconds=0.25, width=7680,
                     height=4320, codec="hevc")

    def spec(*outputs: dict) -> JobSpec:
        return JobSpec.parse({"input": "8k.mp4", "stages": {"depth": {}}, "outputs": list(outputs)})

    assert estimate_encoder_memory_mb(spec({"kind": "depth_npz"}), info) == 0
    colour = estimate_encoder_memory_mb(spec({"kind": "depth_color_mp4"}), info)
    assert colour == pytest.approx(60 + 40 * 3840 * 2160 / 2**20)
    full = estimate_encoder_memory_mb(spec({"kind": "depth_color_mp4", "max_side": 16384}), info)
    assert full == pytest.approx(60 + 78 * 7680 * 4320 / 2**20)  # ~2.5 GB
    assert estimate_encoder_memory_mb(spec({"kind": "depth_color_mp4", "encoder": "nvenc"}), info) == 0
    preview = estimate_encoder_memory_mb(spec({"kind": "depth_preview_mp4"}), info)
    assert preview == pytest.approx(60 + 78 * 7680 * 2160 / 2**20)
    both = spec({"kind": "depth_color_mp4"}, {"kind": "depth_preview_mp4"}, {"kind": "depth_npz"})
    assert estimate_encoder_memory_mb(both, info) == pytest.approx(colour + preview)
    assert estimate_frame_memory_mb(both, info) > colour + preview


def preview_and_colour(tmp_path: Path, width: int, height: int, name: str = "out", **options) -> tuple:
    """Probes of the depth preview and colour videos of a local job on a `width` x `height` clip
    (`options` for both outputs), written to ``tmp_path / name``."""
    spec = JobSpec.parse({"input": str(clip(tmp_path, width, height)),
                          "stages": {"depth": {"synthetic_weights": True, "input_size": 56}},
                          "outputs": [{"kind": "depth_preview_mp4", **options},
                                      {"kind": "depth_color_mp4", **options}]})
    run_job(spec, tmp_path / name, local=True)
    return probe(tmp_path / name / "depth_preview.mp4"), probe(tmp_path / name / "depth_color.mp4")


def test_depth_preview_too_wide_for_h264_is_hevc(tmp_path: Path) -> None:
    # 2100 wide: the side-by-side preview is 4200 wide, over the 4096 H.264 decoders take.
    preview, colour = preview_and_colour(tmp_path, 2100, 400)
    assert (preview.codec, preview.width, preview.num_frames) == ("hevc", 4200, 2)
    assert (colour.codec, colour.width, colour.num_frames) == ("h264", 2100, 2)


def test_depth_pictures_beyond_4k_are_scaled_down(tmp_path: Path) -> None:
    # 3900 wide: the colour video and each half of the preview are scaled to 3840 on their long
    # side (an 8K source's full-size preview would be past every HEVC decoder's limit)
    preview, colour = preview_and_colour(tmp_path, 3900, 600)
    assert (preview.width, preview.height, preview.num_frames) == (2 * 3840, 590, 2)
    assert (colour.codec, colour.width, colour.height, colour.num_frames) == ("h264", 3840, 590, 2)
    warnings = json.loads((tmp_path / "out" / "report.json").read_text())["warnings"]
    assert [w for w in warnings if "scaled" in w] == [
        f"{kind}: pictures scaled from the source's 3900x600 to 3840x590 (max_side 3840; 16384 keeps "
        "the source's size)" for kind in ("depth_preview_mp4", "depth_color_mp4")]


def test_max_side_sets_the_depth_pictures_size(tmp_path: Path) -> None:
    preview, colour = preview_and_colour(tmp_path, 3900, 600, max_side=16384)  # the source's size
    assert (preview.width, preview.height) == (2 * 3900, 600)
    assert (colour.width, colour.height) == (3900, 600)
    assert not any("scaled" in w for w in json.loads((tmp_path / "out" / "report.json").read_text())["warnings"])
    preview, colour = preview_and_colour(tmp_path, 640, 360, max_side=320, name="small")
    assert (preview.width, preview.height, colour.width, colour.height) == (640, 180, 320, 180)


def test_max_side_is_refused_where_the_output_keeps_the_source_size() -> None:
    with pytest.raises(SpecError, match="max_side applies to depth_color_mp4, depth_preview_mp4; "
                                        "'depth_png16' keeps the source's size"):
        JobSpec.parse({"input": "a.mp4", "stages": {"depth": {}},
                       "outputs": [{"kind": "depth_png16", "max_side": 1920}]})


def test_batches_of_4k_frames_hold_fewer_frames(tmp_path: Path) -> None:
    # 16 frames of 8K are 1.6 GB of RGB, and a batch or two are decoded ahead: batches stay
    # under 2**26 pixels (8 frames of 4K), whatever batch_frames allows
    path = clip(tmp_path, 3840, 2160, frames=10)
    spec = JobSpec.parse({"input": str(path), "stages": {"depth": {}}, "outputs": [{"kind": "depth_npz"}]})
    assert spec.resources.batch_frames == 16
    report = run_job(spec, tmp_path / "out", local=True,
                     plans=[StagePlan("depth", "batch_sizes", BatchSizeStage)])
    assert "batches of [8, 2] frames" in report.warnings
    assert [spec.resources.frames_per_batch(w, h) for w, h in [(1920, 1080), (7680, 4320), (16384, 16384)]] == [16, 2, 1]



def test_memory_estimate_counts_the_depth_the_refiner_holds() -> None:
    """The refiner holds a window and a stride of source-size depth frames (the shipped windows,
    32 every 24, hold 56; ``windows: [12, 6]`` holds 18), so the estimate grows by that much."""
    info = VideoInfo(path="x.mp4", num_frames=100, fps=25.0, duration_seconds=4.0, width=3840,
                     height=2160, codec="h264")

    def spec(refine: dict | None) -> JobSpec:
        stages = {"depth": {}, **({"refine": refine} if refine is not None else {})}
        return JobSpec.parse({"input": "x.mp4", "stages": stages, "outputs": [{"kind": "depth_npz"}]})

    base = estimate_frame_memory_mb(spec(None), info)
    frame_mb = 3840 * 2160 * 4 / 2**20
    assert estimate_frame_memory_mb(spec({}), info) - base == pytest.approx(56 * frame_mb)
    assert estimate_frame_memory_mb(spec({"windows": [12, 6]}), info) - base == pytest.approx(18 * frame_mb)


def test_memory_estimate_counts_the_frames_a_chunk_keeps_for_the_next_one() -> None:
    """With chunking, a chunk's decoder keeps the overlap's RGB frames for the next chunk: at
    1080p the 32 of the default overlap (199 MB); at 4K they would be over 512 MB, so none."""
    def spec(chunking: bool) -> JobSpec:
        return JobSpec.parse({"input": "x.mp4", "stages": {"depth": {}}, "outputs": [{"kind": "depth_npz"}],
                              "chunking": {"enabled": chunking}})

    for (w, h), frames in (((1920, 1080), 32), ((3840, 2160), 0)):
        info = VideoInfo(path="x.mp4", num_frames=1000, fps=25.0, duration_seconds=40.0, width=w, height=h,
                         codec="h264")
        grown = estimate_frame_memory_mb(spec(True), info) - estimate_frame_memory_mb(spec(False), info)
        assert grown == pytest.approx(frames * w * h * 3 / 2**20)
