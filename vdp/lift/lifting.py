"""Lifting 2D detections to camera-space XYZ (metres) with robust depth sampling.

A box samples the depth inside its central part (each side moved in by `box_shrink` of the
box's size, so the background around a loosely fitting box stays out) and takes the median
of the valid samples; a point takes the median of a ``(2r+1)^2`` window around it. A sample is
valid when finite and positive. A detection is skipped, with the reason recorded, when its
frame has no depth, it lies outside the image, or under `min_valid` of its samples are valid.
The 3D point is the box centre (or the point) back-projected at that depth:
``X = (u - cx) Z / fx``, ``Y = (v - cy) Z / fy`` (OpenCV axes: x right, y down, z forward).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from vdp.lift.depth_source import DepthFrames
from vdp.lift.tracks import Detection


@dataclass(frozen=True)
class LiftOptions:
    """Depth sampling options."""

    point_radius: int = 2       # depth pixels around a point
    box_shrink: float = 0.2     # fraction of the box's width/height moved in from each side
    min_valid: float = 0.25     # least fraction of valid samples


@dataclass
class LiftResult:
    """Lifted detections and the skipped ones with their reasons."""

    lifted: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        return {"lifted": len(self.lifted), "skipped": len(self.skipped),
                "skipped_by_reason": dict(Counter(s["reason"] for s in self.skipped))}


def sample_window(depth: np.ndarray, det: Detection, sx: float, sy: float,
                  opts: LiftOptions) -> np.ndarray | None:
    """The depth samples of a detection (None when it lies outside the image)."""
    h, w = depth.shape
    if det.box is not None:
        x1, y1, x2, y2 = det.box
        dx, dy = (x2 - x1) * opts.box_shrink, (y2 - y1) * opts.box_shrink
        x1, x2, y1, y2 = (x1 + dx) * sx, (x2 - dx) * sx, (y1 + dy) * sy, (y2 - dy) * sy
        c0, c1 = math.ceil(x1 - 0.5), math.floor(x2 - 0.5)  # pixels whose centres are inside
        r0, r1 = math.ceil(y1 - 0.5), math.floor(y2 - 0.5)
        if c1 < c0 or r1 < r0:  # thinner than a pixel: the pixel under the centre
            c0 = c1 = math.floor(det.u * sx)
            r0 = r1 = math.floor(det.v * sy)
    else:
        cu, cv = math.floor(det.u * sx), math.floor(det.v * sy)
        c0, c1, r0, r1 = cu - opts.point_radius, cu + opts.point_radius, cv - opts.point_radius, cv + opts.point_radius
    if not (0 <= det.u * sx < w and 0 <= det.v * sy < h):
        return None
    return depth[max(r0, 0):min(r1, h - 1) + 1, max(c0, 0):min(c1, w - 1) + 1].ravel()


def lift(detections: list[Detection], depth: DepthFrames, image_size: tuple[int, int] | None = None,
         opts: LiftOptions = LiftOptions()) -> LiftResult:
    """Lift `detections` (pixels of an `image_size` image; default the source video's, else the
    depth's) with the depth and intrinsics of `depth`."""
    intr = depth.intrinsics
    ref_w, ref_h = image_size or depth.source_size or (intr.width, intr.height)
    sx, sy = intr.width / ref_w, intr.height / ref_h
    result, cache_frame, cache = LiftResult(), None, None
    for det in sorted(detections, key=lambda d: d.frame):
        base = {"frame": det.frame, "id": det.id, "type": "box" if det.box else "point",
                "u": det.u, "v": det.v}
        if det.frame != cache_frame:
            cache_frame, cache = det.frame, depth.get(det.frame)
        if cache is None:
            result.skipped.append({**base, "reason": "no depth for this frame"})
            continue
        if cache.shape != (intr.height, intr.width):
            result.skipped.append({**base, "reason": f"depth frame is {cache.shape}, intrinsics are "
                                                     f"{intr.height}x{intr.width}"})
            continue
        samples = sample_window(cache, det, sx, sy, opts)
        if samples is None:
            result.skipped.append({**base, "reason": "outside the image"})
            continue
        valid = samples[np.isfinite(samples) & (samples > 0)]
        frac = len(valid) / max(len(samples), 1)
        if len(valid) == 0 or frac < opts.min_valid:
            result.skipped.append({**base, "reason": "too few valid depth samples", "valid_fraction": round(frac, 4)})
            continue
        z = float(np.median(valid))
        u, v = det.u * sx, det.v * sy
        result.lifted.append({**base, "x": (u - intr.cx) * z / intr.fx, "y": (v - intr.cy) * z / intr.fy,
                              "z": z, "samples": int(len(samples)), "valid_fraction": round(frac, 4)})
    return result
