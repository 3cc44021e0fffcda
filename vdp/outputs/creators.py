"""Output kinds for VR and 3D tools (VR180, OpenEXR depth, PLY point clouds,
post-production mattes), registered into
`vdp.outputs.OUTPUT_TYPES`; each takes the spec's `camera` keyword."""
from __future__ import annotations

from vdp.outputs.base import Output
from vdp.outputs.exr import DepthExrOutput
from vdp.outputs.mattes_post import AlphaPng16Output, ForegroundMp4Output, ProresAlphaOutput
from vdp.outputs.ply import PointCloudPlyOutput
from vdp.outputs.stereo_layouts import Anaglyph444Output, RgbdOutput, SbsCrossOutput
from vdp.outputs.vr180 import Vr180SbsOutput

CREATOR_OUTPUT_TYPES: dict[str, type[Output]] = {
    "vr180_sbs": Vr180SbsOutput, "depth_exr": DepthExrOutput, "point_cloud_ply": PointCloudPlyOutput,
    "prores4444_mov": ProresAlphaOutput, "foreground_mp4": ForegroundMp4Output, "alpha_png16": AlphaPng16Output,
    "sbs_cross": SbsCrossOutput, "rgbd": RgbdOutput, "anaglyph_444": Anaglyph444Output,
}
