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
#: Longest side of a depth picture by default (4K UHD). The depth is made at the model's input
#: size, so a larger picture adds no detail; few players decode one, and at 8K the HEVC encoder
#: alone needs ~2 GB of memory.
PICTURE_SIDE = 3840
_D, _M, _S = "vdp.outputs.depth:", "vdp.outputs.matte:", "vdp.outputs.stereo:"
_L, _P = "vdp.outputs.stereo_layouts:", "vdp.outputs.mattes_post:"


def _stereo(kind: str, output: str, tail: str, description: str, parts: str | None = "video") -> OutputEntry:
    """A stereo video named ``stereo<tail>``, or ``<input stem><tail>`` (the layout tokens VR
    players read, e.g. ``_LRF_Full_SBS.mp4``)."""
    return OutputEntry(kind, output, ("stereo",), f"stereo{tail}", _MP4, description=description,
                       input_suffix=tail, parts=parts)


OUTPUTS = [
    OutputEntry("depth_npz", _D + "DepthNpzOutput", ("depth",), "depth.npz", _OCTETS,
                description="float32 depth [N,H,W] in one NPZ archive"),
    OutputEntry("depth_npy", _D + "DepthNpyOutput", ("depth",), "depth_npy", _OCTETS, folder=True,
                parts="frames", description="a folder of float32 .npy files, one per batch"),
    OutputEntry("depth_png16", _D + "DepthPng16Output", ("depth",), "depth_png16", "image/png",
                folder=True, parts="frames", description="16-bit PNGs with a JSON sidecar to decode them"),
    OutputEntry("depth_color_mp4", _D + "DepthColorMp4Output", ("depth",), "depth_color.mp4", _MP4,
                parts="video", description="colourised depth video", input_suffix="_depth.mp4",
                max_side=PICTURE_SIDE),
    OutputEntry("depth_preview_mp4", _D + "DepthPreviewMp4Output", ("rgb", "depth"),
                "depth_preview.mp4", _MP4, parts="video", description="RGB | colourised depth, side by side",
                max_side=PICTURE_SIDE),
    OutputEntry("depth_exr", "vdp.outputs.exr:DepthExrOutput", ("depth",), "depth_exr", "image/x-exr",
                folder=True, parts="frames", description="float32 OpenEXR Z per frame + camera intrinsics sidecar"),
    OutputEntry("point_cloud_ply", "vdp.outputs.ply:PointCloudPlyOutput", ("rgb", "depth"),
                "points_ply", _OCTETS, folder=True, depth_kind="metric",
                description="binary PLY point cloud per frame (metres, RGB) + intrinsics sidecar"),
    OutputEntry("rgbd", _L + "RgbdOutput", ("rgb", "depth"), "RGBD.mp4", _MP4,
                parts="video", description="colour | grey depth (near = white), side by side"),
    OutputEntry("alpha_mp4", _M + "AlphaMp4Output", ("alpha",), "alpha.mp4", _MP4,
                parts="video", description="grayscale alpha matte video"),
    OutputEntry("foreground_webm", _M + "ForegroundWebmOutput", ("rgb", "alpha"), "foreground.webm",
                "video/webm", parts="video", description="foreground with transparency (VP9)"),
    OutputEntry("rgba_png", _M + "RgbaPngOutput", ("rgb", "alpha"), "rgba_png", "image/png",
                folder=True, parts="frames", description="a folder of 8-bit RGBA PNGs"),
    OutputEntry("composite_mp4", _M + "CompositeMp4Output", ("rgb", "alpha"), "composite.mp4", _MP4,
                parts="video", description="foreground over a solid background colour"),
    OutputEntry("prores4444_mov", _P + "ProresAlphaOutput", ("rgb", "alpha"), "ProRes4444_alpha.mov",
                "video/quicktime", description="foreground + alpha, ProRes 4444 (editing tools)"),
    OutputEntry("foreground_mp4", _P + "ForegroundMp4Output", ("rgb", "alpha"), "foreground.mp4",
                _MP4, parts="video", description="the matte's foreground colour, to pair with an alpha"),
    OutputEntry("alpha_png16", _P + "AlphaPng16Output", ("alpha",), "alpha_png16", "image/png",
                folder=True, parts="frames", description="a folder of 16-bit grey alpha PNGs"),
    _stereo("sbs_full", _S + "SbsFullOutput", "_LRF_Full_SBS.mp4", "left | right at full width each"),
    _stereo("sbs_half", _S + "SbsHalfOutput", "_LR_Half_SBS.mp4",
            "left | right squeezed into one frame width"),
    _stereo("tb_full", _S + "TbFullOutput", "_Full_TB.mp4", "left over right at full height each"),
    _stereo("tb_half", _S + "TbHalfOutput", "_Half_TB.mp4",
            "left over right squeezed into one frame height"),
    _stereo("anaglyph", _S + "AnaglyphOutput", "_Anaglyph.mp4", "red/cyan anaglyph"),
    _stereo("sbs_cross", _L + "SbsCrossOutput", "_RLF_Cross_SBS.mp4",
            "full SBS, right view on the left (cross-eyed viewing)"),
    _stereo("anaglyph_444", _L + "Anaglyph444Output", "_Anaglyph_444.mp4",
            "red/cyan anaglyph with 4:4:4 chroma (no colour smear at edges)"),
    _stereo("vr180_sbs", "vdp.outputs.vr180:Vr180SbsOutput", "_180x180_LR.mp4",
            "180-degree equirectangular SBS with Spherical Video V2 metadata", parts=None),
]
