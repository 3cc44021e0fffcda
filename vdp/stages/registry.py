"""From a JobSpec to the stage recipes a runner builds (model stages are imported lazily)."""
from __future__ import annotations

from functools import partial

from vdp.engine.plan import StagePlan
from vdp.spec import DepthSpec, JobSpec, MatteSpec, RefineSpec, StereoSpec
from vdp.stages.base import Stage

#: Relative per-frame compute of each stage, for planning replicas before any actor has
#: measured its own cost (VDA-S windows dominate; the refiner and stereo are light).
COST_HINTS = {"depth": 4.0, "refine": 0.3, "matte": 1.0, "stereo": 0.3}


def _depth(spec: DepthSpec, precision: str) -> Stage:
    from vdp.stages.depth import DepthStage

    return DepthStage(spec, precision=precision)


def _refine(spec: RefineSpec, precision: str, depth_kind: str) -> Stage:
    from vdp.stages.refine import RefineStage

    return RefineStage(spec, precision=precision, depth_kind=depth_kind)


def _matte(spec: MatteSpec, precision: str) -> Stage:
    from vdp.stages.matte import MatteStage

    return MatteStage(spec, precision=precision)


def _stereo(spec: StereoSpec, precision: str, depth_kind: str) -> Stage:
    from vdp.stages.stereo import StereoStage

    return StereoStage(spec, precision=precision, depth_kind=depth_kind)


def plan_stages(spec: JobSpec) -> list[StagePlan]:
    """The job's stages in pipeline order (depth → refine → matte → stereo)."""
    gpus = spec.resources.gpus_per_stage
    prec = spec.precision
    plans = []
    d = spec.stages.depth
    depth_kind = "metric" if d is not None and d.model.startswith("metric") else "relative"
    if d is not None:
        weights = "synthetic" if d.synthetic_weights else (d.checkpoint or "official")
        plans.append(StagePlan("depth", _key(d.model, d.input_size, d.mode, prec, weights),
                               partial(_depth, d, prec), gpus, COST_HINTS["depth"]))
    if spec.stages.refine is not None:
        plans.append(StagePlan("refine", _key(depth_kind, prec, spec.stages.refine.checkpoint or "shipped"),
                               partial(_refine, spec.stages.refine, prec, depth_kind), gpus,
                               COST_HINTS["refine"]))
    m = spec.stages.matte
    if m is not None:
        weights = "synthetic" if m.synthetic_weights else (m.checkpoint or "official")
        plans.append(StagePlan("matte", _key(m.variant, m.refiner, m.frames_per_call,
                                             m.downsample_ratio or "auto", prec, weights),
                               partial(_matte, m, prec), gpus, COST_HINTS["matte"]))
    st = spec.stages.stereo
    if st is not None:
        plans.append(StagePlan("stereo", _key(st.divergence, st.convergence, st.edge_dilation,
                                              st.lookahead_frames, prec, depth_kind),
                               partial(_stereo, st, prec, depth_kind), gpus, COST_HINTS["stereo"]))
    return plans


def _key(*parts: object) -> str:
    """A short, dashboard-friendly id of a stage configuration."""
    import hashlib

    text = "-".join(str(p) for p in parts)
    if len(text) <= 48 and "/" not in text:
        return text
    return f"{parts[0]}-{hashlib.sha1(text.encode()).hexdigest()[:10]}"
