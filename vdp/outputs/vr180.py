"""VR180 output: both eyes re-projected to 180-degree equirectangular, side by side, tagged with
Spherical Video V2 metadata so headsets and YouTube play it as immersive 3D.

=============  ==========================  ===============================================
kind           default name                frame
=============  ==========================  ===============================================
``vr180_sbs``  ``{stem}_180x180_LR.mp4``   2S x S: left eye's half sphere | right eye's
=============  ==========================  ===============================================

``S = pi * f`` (the flat view's centre keeps its resolution), at most 2048. The flat view fills
the camera's field of view (``camera`` in the spec, else an estimated 70 degrees wide) in the
middle of each half sphere. The file name's ``_180x180_LR`` token is what players that ignore
metadata read; the ``st3d`` (left-right) and ``sv3d`` (equirectangular, bounds cropping the
sphere to 180 x 180 degrees) boxes sit in the video sample entry.
"""
from __future__ import annotations

from pathlib import Path

import torch

from vdp.io import Mp4Writer
from vdp.io.mp4boxes import add_to_video_sample_entry, spherical_v2_boxes
from vdp.lift.camera import intrinsics_for
from vdp.outputs.stereo import _StereoOutput
from vdp.spec import OutputSpec
from vdp.stereo.equirect import EquirectMap, equirect_grid, eye_side, to_equirect
from vdp.types import VideoInfo

#: 180 x 180 degrees: a quarter of the full 360-degree width cropped on each side, none in height.
VR180_BOUNDS = (0.0, 0.0, 0.25, 0.25)


class TaggedMp4Writer(Mp4Writer):
    """An `Mp4Writer` that adds `boxes` to the video sample entry before the file is published."""

    def __init__(self, *args, boxes: bytes, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.boxes = boxes

    def _finalize(self) -> None:
        super()._finalize()
        add_to_video_sample_entry(self.tmp_path, self.boxes)


class Vr180SbsOutput(_StereoOutput):
    """Side-by-side 180-degree equirectangular stereo with Spherical Video V2 metadata."""

    def __init__(self, spec: OutputSpec, path: Path, info: VideoInfo, *, camera: object = None,
                 synthetic: bool = False, **_: object) -> None:
        super().__init__(spec, path, info, synthetic=synthetic)
        self.camera = camera
        self._grid: torch.Tensor | None = None
        self._map: EquirectMap | None = None  # the grid as tables, for views on the CPU

    def pack(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        if self._grid is None:
            intr = intrinsics_for(self.camera, int(left.shape[-1]), int(left.shape[-2]))
            self._grid = equirect_grid(intr, eye_side(intr))
        if left.device.type == "cpu" and right.device.type == "cpu":
            if self._map is None:
                self._map = EquirectMap(self._grid, int(left.shape[-2]), int(left.shape[-1]))
            return torch.cat([self._map(left), self._map(right)], dim=3)
        return torch.cat([to_equirect(left, self._grid), to_equirect(right, self._grid)], dim=3)

    def open_writer(self, codec: str, **kwargs) -> Mp4Writer:
        return super().open_writer(codec, writer=TaggedMp4Writer,
                                   boxes=spherical_v2_boxes(2, bounds=VR180_BOUNDS), **kwargs)
