"""Outputs: what each output kind of a JobSpec writes from the batches a job produces.

Which class writes which kind, and the layers it reads, come from `vdp.catalog`.
"""
from __future__ import annotations

from pathlib import Path

from vdp import catalog
from vdp.outputs.base import Output
from vdp.spec import JobSpec, output_name
from vdp.types import VideoInfo


def open_outputs(spec: JobSpec, out_dir: Path, info: VideoInfo) -> list[Output]:
    """One Output per entry of ``spec.outputs``, writing inside `out_dir`."""
    total = min(info.num_frames, spec.max_frames or info.num_frames)
    depth = spec.stages.depth
    common = {
        "num_frames": total,
        "depth_kind": spec.depth_kind or "relative",
        "synthetic": bool(depth and depth.synthetic_weights),
        "camera": spec.camera,
    }
    stem = spec.output_stem()
    return [catalog.output(o.kind).output_class()(o, out_dir / output_name(o, stem), info, **common)
            for o in spec.outputs]


__all__ = ["Output", "open_outputs"]
