"""PLY point clouds from metric depth: one coloured, camera-space point cloud per frame.

``point_cloud_ply`` writes ``<name>/points_<frame:06d>.ply`` (binary little-endian; vertex
properties ``float x, y, z`` in metres and ``uchar red, green, blue``), opening in MeshLab,
CloudCompare, Blender and Open3D. Points use the OpenCV camera convention (x right, y down,
z forward) with the intrinsics in ``<name>.json``; every ``point_stride``-th pixel in each
direction becomes a point, and pixels without a valid depth (not finite, not positive) are
left out. Relative depth has no scale, so this kind needs a metric model.
"""
from __future__ import annotations

import numpy as np
import torch

from vdp.errors import SpecError
from vdp.lift.camera import Intrinsics
from vdp.outputs.frames3d import PerFrameOutput
from vdp.types import FrameBatch

VERTEX = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])


def depth_to_points(depth: torch.Tensor, rgb: torch.Tensor | None, intr: Intrinsics,
                    stride: int = 1) -> np.ndarray:
    """Camera-space points (structured `VERTEX` array) of the valid pixels of `depth` ``[H,W]``.

    Args:
        depth: Metric depth along the optical axis, ``[H,W]``.
        rgb: uint8 ``[3,H',W']`` colours (resized to the depth's size when they differ), or None (grey).
        intr: Intrinsics of a ``W x H`` image.
        stride: Keep every `stride`-th pixel in each direction.
    """
    h, w = depth.shape
    vs = torch.arange(0, h, stride)
    us = torch.arange(0, w, stride)
    z = depth[vs][:, us].float()
    v, u = torch.meshgrid(vs.float() + 0.5, us.float() + 0.5, indexing="ij")
    valid = torch.isfinite(z) & (z > 0)
    out = np.zeros(int(valid.sum()), dtype=VERTEX)
    out["x"] = ((u - intr.cx) * z / intr.fx)[valid].numpy()
    out["y"] = ((v - intr.cy) * z / intr.fy)[valid].numpy()
    out["z"] = z[valid].numpy()
    if rgb is not None:
        if tuple(rgb.shape[-2:]) != (h, w):
            rgb = torch.nn.functional.interpolate(rgb[None].float(), size=(h, w), mode="bilinear",
                                                  align_corners=False)[0].round().clamp(0, 255).to(torch.uint8)
        sel = rgb[:, vs][:, :, us]
        for c, name in enumerate(("red", "green", "blue")):
            out[name] = sel[c][valid].numpy()
    else:
        out["red"] = out["green"] = out["blue"] = 128
    return out


def write_ply(path: str, points: np.ndarray, comment: str = "") -> None:
    """A binary little-endian PLY of structured `VERTEX` points."""
    header = ["ply", "format binary_little_endian 1.0"]
    if comment:
        header.append(f"comment {comment}")
    header += [f"element vertex {len(points)}", "property float x", "property float y", "property float z",
               "property uchar red", "property uchar green", "property uchar blue", "end_header"]
    with open(path, "wb") as f:
        f.write(("\n".join(header) + "\n").encode("ascii"))
        f.write(points.astype(VERTEX, copy=False).tobytes())


def read_ply(path: str) -> tuple[list[str], np.ndarray]:
    """Header lines and vertices of a PLY this module wrote."""
    data = open(path, "rb").read()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii").splitlines()
    count = int(next(line.split()[2] for line in header if line.startswith("element vertex")))
    return header, np.frombuffer(data, dtype=VERTEX, count=count, offset=end)


class PointCloudPlyOutput(PerFrameOutput):
    """A folder of per-frame coloured PLY point clouds from metric depth."""

    prefix = "points"
    ext = "ply"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.depth_kind != "metric":
            self.folder.abort()
            raise SpecError("output point_cloud_ply needs metric depth (stages.depth.model: metric_vits, "
                            "metric_vitb or metric_vitl): relative depth has no scale")

    def write_frame(self, path: str, batch: FrameBatch, i: int, depth, intr: Intrinsics) -> None:
        pts = depth_to_points(depth, batch.frames[i].cpu(), intr, self.spec.point_stride)
        write_ply(path, pts, comment=f"vdp frame {int(batch.indices[i])}; metres, OpenCV camera axes")

    def sidecar(self) -> dict:
        return {**super().sidecar(), "point_stride": self.spec.point_stride}
