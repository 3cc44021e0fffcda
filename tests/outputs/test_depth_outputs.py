"""Depth outputs: PNG16 decodes back through its sidecar, colours use one range for the video."""
from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from vdp.io import Png16SequenceWriter, iter_batches
from vdp.outputs import open_outputs
from vdp.spec import JobSpec
from vdp.types import FrameBatch, VideoInfo

INFO = VideoInfo(path="synthetic", num_frames=12, fps=24.0, duration_seconds=0.5, width=40,
                 height=30, codec="none")


def batches(depth: torch.Tensor, size: int = 5):
    n = depth.shape[0]
    frames = torch.zeros(n, 3, 30, 40, dtype=torch.uint8)
    for s in range(0, n, size):
        idx = torch.arange(s, min(n, s + size))
        yield FrameBatch(frames[idx], idx, idx.double() / 24, {"depth": depth[idx]})


def write_all(spec: JobSpec, out: Path, depth: torch.Tensor) -> list[Path]:
    outputs = open_outputs(spec, out, INFO)
    for b in batches(depth):
        for o in outputs:
            o.write(b)
    return [o.close() for o in outputs]


def spec(model: str, *kinds: str) -> JobSpec:
    return JobSpec.parse({"input": "x", "stages": {"depth": {"model": model}},
                          "outputs": [{"kind": k} for k in kinds]})


def test_relative_png16_round_trips_through_sidecar(tmp_path):
    depth = torch.rand(12, 30, 40) * 5
    write_all(spec("vits", "depth_png16"), tmp_path, depth)
    side = json.loads((tmp_path / "depth_png16.json").read_text())
    assert side["kind"] == "relative" and side["clipped_pixels"] == 0
    files = sorted((tmp_path / "depth_png16").glob("*.png"))
    assert len(files) == 12
    png = np.stack([iio.imread(f) for f in files])
    assert png.dtype == np.uint16
    decoded = png * side["scale"] + side["offset"]
    np.testing.assert_allclose(decoded, depth.numpy(), atol=side["scale"] / 2 + 1e-6)


def test_metric_png16_is_millimetres(tmp_path):
    depth = torch.full((12, 30, 40), 2.5)
    depth[:, :5] = 80.0  # beyond 65.535 m: clipped and counted
    write_all(spec("metric_vits", "depth_png16"), tmp_path, depth)
    side = json.loads((tmp_path / "depth_png16.json").read_text())
    assert side["unit"] == "metres" and side["scale"] == 0.001
    png = iio.imread(tmp_path / "depth_png16" / "frame_000003.png")
    assert png[20, 20] == 2500 and png[0, 0] == 65535
    assert side["clipped_pixels"] == 12 * 5 * 40


def test_colour_mapping_is_stable_over_time(tmp_path):
    # the same depth value must get the same colour in the first and in the last frame,
    # even though later frames span a different range
    depth = torch.linspace(1, 2, 40).expand(12, 30, 40).clone()
    depth[10:, :, :20] = 4.0
    write_all(spec("vits", "depth_color_mp4"), tmp_path, depth)
    video = np.stack([b.frames.numpy() for b in iter_batches(tmp_path / "depth_color.mp4", batch_frames=12)])[0]
    assert video.shape == (12, 3, 30, 40)
    diff = np.abs(video[0, :, 10, 30].astype(int) - video[11, :, 10, 30].astype(int)).max()
    assert diff <= 6  # H.264 noise only


def test_large_frames_are_written_a_few_at_a_time_with_the_same_files(tmp_path, monkeypatch):
    # a batch beyond GROUP_PIXELS is quantised and colourised in groups of frames (an 8K batch
    # is gigabytes in one piece); the files and the first batch's ranges are unchanged
    from vdp.outputs import _pixels

    depth = torch.rand(12, 30, 40) * 5
    job = spec("vits", "depth_png16", "depth_color_mp4")
    write_all(job, tmp_path / "whole", depth)
    monkeypatch.setattr(_pixels, "GROUP_PIXELS", 2 * 30 * 40)
    assert _pixels.frame_groups(5, 30, 40) == [(0, 2), (2, 4), (4, 5)]
    handed = []
    write = Png16SequenceWriter.write_filtered
    monkeypatch.setattr(Png16SequenceWriter, "write_filtered",
                        lambda self, rows: handed.append(len(rows)) or write(self, rows))
    write_all(job, tmp_path / "groups", depth)
    assert handed == [2, 2, 1] * 2 + [2]  # batches of 5, 5 and 2 frames
    for name in ["depth_png16.json", "depth_color.mp4",
                 *(f"depth_png16/frame_{i:06d}.png" for i in range(12))]:
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "groups" / name).read_bytes(), name
