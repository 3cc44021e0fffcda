"""Depth for 3D tools from a real job on an encoded video: float32 EXR frames that read back
exactly (equal to the NPZ), PLY point clouds (header, vertex count, a known point) and the
camera intrinsics sidecar."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from tests.conftest import MEDIA
from vdp.engine.job import run_job
from vdp.errors import SpecError
from vdp.lift.camera import Intrinsics
from vdp.outputs.exr import read_exr
from vdp.outputs.ply import depth_to_points, read_ply, write_ply
from vdp.spec import JobSpec

CLIP = MEDIA / "sam2__bedroom.mp4"


def metric_job(tmp_path, camera=None):
    data = {"input": str(CLIP), "max_frames": 3, "output_names": "input",
            "stages": {"depth": {"model": "metric_vits", "input_size": 56, "synthetic_weights": True}},
            "outputs": [{"kind": "depth_npz"}, {"kind": "depth_exr"},
                        {"kind": "point_cloud_ply", "point_stride": 3}],
            "resources": {"device": "cpu", "batch_frames": 2}}
    if camera:
        data["camera"] = camera
    return run_job(JobSpec.parse(data), tmp_path, local=True)


def test_exr_reads_back_exactly_and_ply_holds_the_valid_points(tmp_path):
    report = metric_job(tmp_path, camera={"fx": 500.0, "cx": 300.0})
    assert report.outputs == ["sam2__bedroom_depth.npz", "sam2__bedroom_depth_exr", "sam2__bedroom_points_ply"]
    depth = np.load(tmp_path / "sam2__bedroom_depth.npz")["depth"]
    assert depth.dtype == np.float32 and depth.shape[0] == 3
    exr_dir = tmp_path / "sam2__bedroom_depth_exr"
    assert sorted(p.name for p in exr_dir.iterdir()) == [f"depth_{i:06d}.exr" for i in range(3)]
    for i in range(3):
        z = read_exr(str(exr_dir / f"depth_{i:06d}.exr"))
        assert z.dtype == np.float32 and np.array_equal(z, depth[i])  # bit-exact

    side = json.loads((tmp_path / "sam2__bedroom_depth_exr.json").read_text())
    info_w = json.loads((tmp_path / "report.json").read_text())["input"]["width"]
    h, w = depth.shape[1:]
    scale = w / info_w
    assert side["source"] == "spec" and side["depth_kind"] == "metric" and side["unit"] == "metres"
    assert math.isclose(side["fx"], 500.0 * scale) and math.isclose(side["cx"], 300.0 * scale)
    assert (side["width"], side["height"], side["frames"]) == (w, h, 3)

    header, pts = read_ply(str(tmp_path / "sam2__bedroom_points_ply" / "points_000001.ply"))
    assert header[:2] == ["ply", "format binary_little_endian 1.0"]
    assert "property float x" in header and "property uchar red" in header
    sub = depth[1][::3, ::3]
    valid = np.isfinite(sub) & (sub > 0)
    assert f"element vertex {int(valid.sum())}" in header and len(pts) == int(valid.sum())
    # a known point: pixel (row 3, column 6) -> ((u - cx) z / fx, (v - cy) z / fy, z)
    intr = Intrinsics.read_json(tmp_path / "sam2__bedroom_points_ply.json")
    z = float(depth[1][3, 6])
    k = int(valid[:1].sum() + valid[1, :2].sum())  # its position among the valid points, row-major
    assert np.allclose([pts["x"][k], pts["y"][k], pts["z"][k]],
                       [(6.5 - intr.cx) * z / intr.fx, (3.5 - intr.cy) * z / intr.fy, z], rtol=1e-5)


def test_estimated_fov_is_marked_and_relative_depth_cannot_make_points(tmp_path):
    report = run_job(JobSpec.parse({
        "input": str(CLIP), "max_frames": 1,
        "stages": {"depth": {"model": "vits", "input_size": 28, "synthetic_weights": True}},
        "outputs": [{"kind": "depth_exr"}], "resources": {"device": "cpu"}}), tmp_path, local=True)
    side = json.loads((tmp_path / (report.outputs[0] + ".json")).read_text())
    assert side["source"] == "estimated" and abs(side["hfov_deg"] - 70.0) < 1e-6
    assert side["depth_kind"] == "relative"
    with pytest.raises(SpecError, match="point_cloud_ply needs metric depth"):
        JobSpec.parse({"input": "x.mp4", "stages": {"depth": {}}, "outputs": [{"kind": "point_cloud_ply"}]})


def test_points_of_a_plane_and_invalid_pixels(tmp_path):
    intr = Intrinsics.from_hfov(4, 2, 90.0, source="spec")  # f = 2
    depth = torch.full((2, 4), 2.0)
    depth[0, 0] = float("nan")
    depth[1, 3] = 0.0
    rgb = torch.arange(24, dtype=torch.uint8).view(3, 2, 4)
    pts = depth_to_points(depth, rgb, intr)
    assert len(pts) == 6
    first = pts[0]  # pixel (row 0, column 1): centre (1.5, 0.5)
    assert (first["x"], first["y"], first["z"]) == pytest.approx(((1.5 - 2) * 2 / 2, (0.5 - 1) * 2 / 2, 2.0))
    assert (first["red"], first["green"], first["blue"]) == (1, 9, 17)
    write_ply(str(tmp_path / "p.ply"), pts)
    header, back = read_ply(str(tmp_path / "p.ply"))
    assert "element vertex 6" in header and np.array_equal(back, pts)
