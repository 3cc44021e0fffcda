"""Per-frame metric depth of a finished job, read from its output folder for `vdp lift`.

Looked for in this order: an EXR depth folder (``*depth_exr`` with its ``.json`` sidecar: kind,
intrinsics, source size), then a ``*depth.npz`` (kind and camera from the folder's
``spec.json``, source size from ``report.json``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vdp.errors import VdpError
from vdp.lift.camera import Intrinsics, intrinsics_for


class DepthSourceError(VdpError):
    """The folder holds no usable metric depth; the message says what was found."""


@dataclass
class DepthFrames:
    """Depth maps ``[H,W]`` by frame, their intrinsics and the source video's size."""

    path: Path
    kind: str
    intrinsics: Intrinsics
    source_size: tuple[int, int] | None
    frames: dict[int, Path] | None = None  # EXR: frame -> file
    array: np.ndarray | None = None        # NPZ: [N,H,W]
    first_frame: int = 0

    def get(self, frame: int) -> np.ndarray | None:
        """The frame's depth, or None when the job did not write that frame."""
        if self.frames is not None:
            f = self.frames.get(frame)
            if f is None:
                return None
            from vdp.outputs.exr import read_exr

            return read_exr(str(f))
        i = frame - self.first_frame
        return self.array[i] if self.array is not None and 0 <= i < len(self.array) else None

    def frame_range(self) -> tuple[int, int]:
        keys = sorted(self.frames) if self.frames is not None else [self.first_frame, self.first_frame + len(self.array) - 1]
        return keys[0], keys[-1]


def open_depth(out_dir: str | Path, *, name: str | None = None, fov_deg: float | None = None) -> DepthFrames:
    """The metric depth in a job's output folder.

    Args:
        out_dir: The job's output folder.
        name: Which depth output (file or folder name) when the folder holds several.
        fov_deg: Horizontal field of view overriding the camera the job recorded.

    Raises:
        DepthSourceError: No depth, several without `name`, or relative depth.
    """
    root = Path(out_dir)
    if not root.is_dir():
        raise DepthSourceError(f"{root} is not a folder (give a job's output folder to --depth)")
    cands = sorted(p for p in root.iterdir() if (p.is_dir() and p.name.endswith("depth_exr"))
                   or (p.is_file() and p.name.endswith("depth.npz")))
    if name is not None:
        cands = [p for p in cands if p.name == name]
    if not cands:
        raise DepthSourceError(f"{root} holds no depth_exr folder or depth.npz"
                               f"{f' named {name!r}' if name else ''}: run the job with one of those outputs")
    exr = [p for p in cands if p.is_dir()]
    if len(exr) > 1 or (not exr and len(cands) > 1):
        raise DepthSourceError(f"{root} holds several depth outputs ({', '.join(p.name for p in cands)}): "
                               f"choose one with --depth-name")
    src = exr[0] if exr else cands[0]
    spec = _read_json(root / "spec.json")
    report = _read_json(root / "report.json")
    if src.is_dir():
        side = _read_json(src.with_name(src.name + ".json"))
        if not side:
            raise DepthSourceError(f"{src} has no sidecar {src.name}.json (camera and depth kind)")
        kind = side.get("depth_kind", "relative")
        intr = Intrinsics.read_json(src.with_name(src.name + ".json"))
        files = {int(p.stem.rsplit("_", 1)[1]): p for p in src.glob("depth_*.exr")}
        size = tuple(side["source_size"]) if side.get("source_size") else None
        out = DepthFrames(src, kind, intr, size, frames=files)
    else:
        model = ((spec.get("stages") or {}).get("depth") or {}).get("model", "")
        kind = "metric" if str(model).startswith("metric") else "relative"
        array = np.load(src)["depth"]
        inp = report.get("input") or {}
        size = (int(inp["width"]), int(inp["height"])) if inp.get("width") else None
        h, w = array.shape[1:]
        cam = _camera(spec.get("camera"))
        ref = size or (w, h)
        out = DepthFrames(src, kind, intrinsics_for(cam, *ref).scaled(w, h), size, array=array)
    if kind != "metric":
        raise DepthSourceError(f"{src} holds relative depth (no scale): lifting to metres needs a metric "
                               f"model (stages.depth.model: metric_vits/metric_vitb/metric_vitl)")
    if fov_deg is not None:
        d = out.intrinsics
        out.intrinsics = Intrinsics.from_hfov(d.width, d.height, fov_deg, source="cli")
    return out


def _camera(data: dict | None):
    if not data:
        return None
    from vdp.spec import CameraSpec

    return CameraSpec.model_validate(data)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
