"""OpenEXR depth frames for compositing and 3D tools (Nuke, Blender, Houdini, Resolve/Fusion).

``depth_exr`` writes ``<name>/depth_<frame:06d>.exr``: one float32 channel ``Z`` per frame,
ZIP-compressed (lossless: the values read back bit-exact), at the depth map's resolution;
``<name>.json`` holds the camera intrinsics and what ``Z`` means (metres for metric models,
relative inverse depth otherwise).
"""
from __future__ import annotations

import numpy as np

from vdp.lift.camera import Intrinsics
from vdp.outputs.frames3d import PerFrameOutput
from vdp.types import FrameBatch


def write_exr(path: str, depth: np.ndarray) -> None:
    """Write float32 ``[H,W]`` `depth` as the ``Z`` channel of a scanline EXR."""
    import OpenEXR

    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {"Z": np.ascontiguousarray(depth, dtype=np.float32)}) as f:
        f.write(path)


def read_exr(path: str) -> np.ndarray:
    """The ``Z`` channel of an EXR file, float32 ``[H,W]``."""
    import OpenEXR

    with OpenEXR.File(str(path)) as f:
        return np.array(f.channels()["Z"].pixels, dtype=np.float32)


class DepthExrOutput(PerFrameOutput):
    """A folder of float32 OpenEXR depth frames plus a camera sidecar."""

    prefix = "depth"
    ext = "exr"

    def write_frame(self, path: str, batch: FrameBatch, i: int, depth, intr: Intrinsics) -> None:
        write_exr(path, depth.numpy())
