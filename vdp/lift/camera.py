"""Pinhole camera intrinsics: given by the spec, or estimated from a horizontal field of view.

Pixel ``(u, v)`` with depth ``z`` (metres, along the optical axis) is the camera-space point
``((u - cx) * z / fx, (v - cy) * z / fy, z)``: x right, y down, z forward (OpenCV convention).
Pixel centres sit at integer coordinates plus 0.5 in this convention's ``cx = W / 2``.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

#: Horizontal field of view assumed when the spec gives no camera: a typical phone main camera
#: (~26 mm equivalent lens is about 70 degrees wide); the sidecar says it was estimated.
DEFAULT_HFOV_DEG = 70.0


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of a ``width x height`` image, in pixels."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    source: str = "spec"  # "spec" or "estimated"

    @classmethod
    def from_hfov(cls, width: int, height: int, hfov_deg: float, *, source: str = "estimated") -> "Intrinsics":
        """Square pixels, principal point at the centre, focal length from the horizontal FOV."""
        if not 0 < hfov_deg < 180:
            raise ValueError(f"hfov_deg must be in (0, 180), got {hfov_deg}")
        f = (width / 2) / math.tan(math.radians(hfov_deg) / 2)
        return cls(width, height, f, f, width / 2, height / 2, source)

    @property
    def hfov_deg(self) -> float:
        return math.degrees(2 * math.atan(self.width / 2 / self.fx))

    @property
    def vfov_deg(self) -> float:
        return math.degrees(2 * math.atan(self.height / 2 / self.fy))

    def scaled(self, width: int, height: int) -> "Intrinsics":
        """The same camera for an image resized to ``width x height``."""
        sx, sy = width / self.width, height / self.height
        return Intrinsics(width, height, self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, self.source)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(hfov_deg=round(self.hfov_deg, 4), vfov_deg=round(self.vfov_deg, 4),
                 convention="OpenCV pinhole: x right, y down, z forward; X = (u - cx) * Z / fx")
        return d

    def write_json(self, path: Path, **extra: object) -> None:
        """Write the intrinsics (plus `extra` fields) as JSON, atomically."""
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps({**self.to_dict(), **extra}, indent=2))
        os.replace(tmp, path)

    @classmethod
    def read_json(cls, path: Path) -> "Intrinsics":
        d = json.loads(Path(path).read_text())
        return cls(int(d["width"]), int(d["height"]), float(d["fx"]), float(d["fy"]),
                   float(d["cx"]), float(d["cy"]), str(d.get("source", "spec")))


def intrinsics_for(camera: object | None, width: int, height: int) -> Intrinsics:
    """Intrinsics for a ``width x height`` frame from a spec's `camera` (a `CameraSpec` or None).

    A camera with ``fx`` (and optionally ``fy``, ``cx``, ``cy``) is used as given (for frames of
    the camera's ``width x height`` when set, rescaled otherwise); one with only ``hfov_deg``
    gives square pixels at that field of view; no camera: `DEFAULT_HFOV_DEG`, marked estimated.
    """
    if camera is None:
        return Intrinsics.from_hfov(width, height, DEFAULT_HFOV_DEG)
    fx = getattr(camera, "fx", None)
    if fx is None:
        return Intrinsics.from_hfov(width, height, float(camera.hfov_deg), source="spec")
    cw = getattr(camera, "width", None) or width
    ch = getattr(camera, "height", None) or height
    fy = camera.fy if camera.fy is not None else fx
    cx = camera.cx if camera.cx is not None else cw / 2
    cy = camera.cy if camera.cy is not None else ch / 2
    return Intrinsics(cw, ch, float(fx), float(fy), float(cx), float(cy), "spec").scaled(width, height)
