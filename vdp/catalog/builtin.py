"""The stages and output kinds that ship with vdp: one entry each."""
from __future__ import annotations

from vdp.catalog.entries import MergePolicy, OutputEntry, StageEntry
from vdp.spec import DepthSpec, JobSpec, MatteSpec, RefineSpec, StereoSpec


def _depth_merge(spec: JobSpec) -> dict[str, MergePolicy]:
    """Relative depth has its own scale and shift per chunk (align); metric depth is in metres."""
    return {"depth": "align" if spec.depth_kind == "relative" else "blend"}


#: Pipeline order. Costs: VDA-S windows dominate; the refiner and stereo are light.
STAGES = [
    StageEntry("depth", "vdp.stages.depth:DepthStage", DepthSpec, produces=("depth",), cost=4.0,
               merge=_depth_merge),
    StageEntry("refine", "vdp.stages.refine:RefineStage", RefineSpec, produces=("depth",),
               requires=("depth",), cost=0.3),
    StageEntry("matte", "vdp.stages.matte:MatteStage", MatteSpec, produces=("alpha", "foreground"),
               cost=1.0),
    StageEntry("stereo", "vdp.stages.stereo:StereoStage", StereoSpec, produces=("stereo",),
               requires=("depth",), cost=0.3),
]

_MP4, _OCTETS = "video/mp4", "application/octet-stream"
_D, _M, _S = "vdp.outputs.depth:", "vdp.outputs.matte:", "vdp.outputs.stereo:"

OUTPUTS = [
    OutputEntry("depth_npz", _D + "DepthNpzOutput", ("depth",), "depth.npz", _OCTETS,
                description="float32 depth [N,H,W] in one NPZ archive"),
    OutputEntry("depth_npy", _D + "DepthNpyOutput", ("depth",), "depth_npy", _OCTETS, folder=True,
                description="a folder of float32 .npy files, one per batch"),
    OutputEntry("depth_png16", _D + "DepthPng16Output", ("depth",), "depth_png16", "image/png",
                folder=True, description="16-bit PNGs with a JSON sidecar to decode them"),
    OutputEntry("depth_color_mp4", _D + "DepthColorMp4Output", ("depth",), "depth_color.mp4", _MP4,
                description="colourised depth video"),
    OutputEntry("depth_preview_mp4", _D + "DepthPreviewMp4Output", ("rgb", "depth"),
                "depth_preview.mp4", _MP4, description="RGB | colourised depth, side by side"),
    OutputEntry("alpha_mp4", _M + "AlphaMp4Output", ("alpha",), "alpha.mp4", _MP4,
                description="grayscale alpha matte video"),
    OutputEntry("foreground_webm", _M + "ForegroundWebmOutput", ("rgb", "alpha"), "foreground.webm",
                "video/webm", description="foreground with transparency (VP9)"),
    OutputEntry("rgba_png", _M + "RgbaPngOutput", ("rgb", "alpha"), "rgba_png", "image/png",
                folder=True, description="a folder of 8-bit RGBA PNGs"),
    OutputEntry("composite_mp4", _M + "CompositeMp4Output", ("rgb", "alpha"), "composite.mp4", _MP4,
                description="foreground over a solid background colour"),
    OutputEntry("sbs_full", _S + "SbsFullOutput", ("stereo",), "stereo_LRF_Full_SBS.mp4", _MP4,
                description="left | right at full width each"),
    OutputEntry("sbs_half", _S + "SbsHalfOutput", ("stereo",), "stereo_LR_Half_SBS.mp4", _MP4,
                description="left | right squeezed into one frame width"),
    OutputEntry("tb_full", _S + "TbFullOutput", ("stereo",), "stereo_Full_TB.mp4", _MP4,
                description="left over right at full height each"),
    OutputEntry("tb_half", _S + "TbHalfOutput", ("stereo",), "stereo_Half_TB.mp4", _MP4,
                description="left over right squeezed into one frame height"),
    OutputEntry("anaglyph", _S + "AnaglyphOutput", ("stereo",), "stereo_Anaglyph.mp4", _MP4,
                description="red/cyan anaglyph"),
]
