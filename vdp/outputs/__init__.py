"""Outputs: what each output kind of a JobSpec writes from the batches a job produces."""
from __future__ import annotations

from pathlib import Path

from vdp.outputs.base import Output
from vdp.outputs.depth import (DepthColorMp4Output, DepthNpyOutput, DepthNpzOutput,
                               DepthPng16Output, DepthPreviewMp4Output)
from vdp.outputs.matte import AlphaMp4Output, CompositeMp4Output, ForegroundWebmOutput, RgbaPngOutput
from vdp.outputs.stereo import (AnaglyphOutput, SbsFullOutput, SbsHalfOutput, TbFullOutput,
                                TbHalfOutput)
from vdp.outputs.creators import CREATOR_OUTPUT_TYPES
from vdp.spec import JobSpec, output_name
from vdp.types import VideoInfo

OUTPUT_TYPES: dict[str, type[Output]] = {
    "depth_npz": DepthNpzOutput, "depth_npy": DepthNpyOutput, "depth_png16": DepthPng16Output,
    "depth_color_mp4": DepthColorMp4Output, "depth_preview_mp4": DepthPreviewMp4Output,
    "alpha_mp4": AlphaMp4Output, "foreground_webm": ForegroundWebmOutput,
    "rgba_png": RgbaPngOutput, "composite_mp4": CompositeMp4Output,
    "sbs_full": SbsFullOutput, "sbs_half": SbsHalfOutput, "tb_full": TbFullOutput,
    "tb_half": TbHalfOutput, "anaglyph": AnaglyphOutput,
}
OUTPUT_TYPES.update(CREATOR_OUTPUT_TYPES)


def open_outputs(spec: JobSpec, out_dir: Path, info: VideoInfo) -> list[Output]:
    """One Output per entry of ``spec.outputs``, writing inside `out_dir`."""
    total = min(info.num_frames, spec.max_frames or info.num_frames)
    depth = spec.stages.depth
    common = {
        "num_frames": total,
        "depth_kind": "metric" if depth is not None and depth.model.startswith("metric") else "relative",
        "synthetic": bool(depth and depth.synthetic_weights),
    }
    stem = spec.output_stem()
    return [OUTPUT_TYPES[o.kind](o, out_dir / output_name(o, stem), info, **common,
                                 **({"camera": spec.camera} if o.kind in CREATOR_OUTPUT_TYPES else {}))
            for o in spec.outputs]


__all__ = ["OUTPUT_TYPES", "Output", "open_outputs"]
