"""JobSpec: the one description of a job, shared by the CLI, the REST gateway and the SDK.

A spec says what to read (`input`), which stages run (`stages`), what to write (`outputs`)
and how (`chunking`, `precision`, `resources`). Named presets in ``configs/*.yaml`` are
specs without an input; `JobSpec.from_preset` fills it in.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vdp.errors import SpecError

Precision = Literal["auto", "fp16", "bf16", "fp32"]
Device = Literal["auto", "cpu", "cuda"]
DepthModel = Literal["vits", "vitb", "vitl", "metric_vits", "metric_vitb", "metric_vitl"]
OutputKind = Literal[
    "depth_npz", "depth_npy", "depth_png16", "depth_color_mp4", "depth_preview_mp4",
    "alpha_mp4", "foreground_webm", "rgba_png", "composite_mp4",
    "sbs_full", "sbs_half", "tb_full", "tb_half", "anaglyph",
]

#: The layer each output kind reads, so a spec asking for an output nobody produces fails early.
OUTPUT_NEEDS: dict[str, str] = {
    "depth_npz": "depth", "depth_npy": "depth", "depth_png16": "depth",
    "depth_color_mp4": "depth", "depth_preview_mp4": "depth",
    "alpha_mp4": "alpha", "foreground_webm": "alpha", "rgba_png": "alpha",
    "composite_mp4": "alpha",
    "sbs_full": "stereo", "sbs_half": "stereo", "tb_full": "stereo", "tb_half": "stereo",
    "anaglyph": "stereo",
}

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DepthSpec(_Strict):
    """Video Depth Anything options."""

    model: DepthModel = "vits"
    input_size: int = Field(518, ge=28, le=2044, description="Shorter side fed to the network (multiple of 14 after snapping).")
    max_res: int = Field(1280, ge=64, description="Frames whose longer side exceeds this are downscaled before depth.")
    mode: Literal["offline", "stream"] = Field("offline", description="Official windowed procedure, or per-frame streaming with cached temporal states.")
    checkpoint: str | None = Field(None, description="Checkpoint path; default: the model directory's official file.")
    synthetic_weights: bool = Field(False, description="Run with deterministic synthetic weights (tests/demos only: not real depth).")


class RefineSpec(_Strict):
    """SSM temporal refiner options."""

    checkpoint: str | None = Field(None, description="Checkpoint path; default: the one shipped with vdp.")


class MatteSpec(_Strict):
    """Robust Video Matting options."""

    variant: Literal["mobilenetv3", "resnet50"] = "mobilenetv3"
    refiner: Literal["deep_guided_filter", "fast_guided_filter"] = "deep_guided_filter"
    downsample_ratio: float | None = Field(None, gt=0, le=1, description="None: the official automatic rule.")
    frames_per_call: int = Field(12, ge=1, le=256)
    checkpoint: str | None = None
    synthetic_weights: bool = False


class StereoSpec(_Strict):
    """Stereo view synthesis from depth (depth-image-based rendering)."""

    divergence: float = Field(2.0, gt=0, le=10, description="Total disparity range in % of the image width.")
    convergence: float = Field(0.5, ge=0, le=1, description="Which depth sits at the screen plane (0 nearest, 1 farthest).")
    edge_dilation: int = Field(2, ge=0, le=16, description="Foreground depth dilation in pixels against halos.")
    lookahead_frames: int = Field(8, ge=0, le=120, description="Frames the disparity range estimate may look ahead.")


class StagesSpec(_Strict):
    """Which stages run; a stage that is null (absent) does not run."""

    depth: DepthSpec | None = None
    refine: RefineSpec | None = None
    matte: MatteSpec | None = None
    stereo: StereoSpec | None = None

    @model_validator(mode="after")
    def _dependencies(self) -> "StagesSpec":
        for stage in ("refine", "stereo"):
            if getattr(self, stage) is not None and self.depth is None:
                raise ValueError(f"{stage} needs the depth stage: set stages.depth too")
        return self

    def enabled(self) -> list[str]:
        """Stage names in pipeline order."""
        return [n for n in ("depth", "refine", "matte", "stereo") if getattr(self, n) is not None]


class OutputSpec(_Strict):
    """One output file or folder."""

    kind: OutputKind
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
                             description="File or folder name inside the output directory; default from the kind.")
    colormap: Literal["turbo", "inferno", "gray"] = "turbo"
    background: str = Field("#00b140", pattern=r"^#[0-9a-fA-F]{6}$", description="Composite background colour.")
    crf: int = Field(18, ge=0, le=51, description="Quality of lossy video outputs (lower is better).")
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                    "veryslow"] = Field("veryfast", description="x264/x265 speed of MP4 outputs: slower presets give smaller files at the same crf (veryfast encodes 720p ~1.6x faster than medium).")


class ChunkingSpec(_Strict):
    """Splitting long videos into overlapping chunks that run in parallel.

    Chunk ``k`` owns frames ``[k*chunk_frames, (k+1)*chunk_frames)``; every chunk after the
    first also runs the `overlap_frames` before its start, to align and cross-fade relative
    depth and to warm the state of recurrent stages (see `vdp.engine.merge`).
    """

    enabled: bool = False
    chunk_frames: int = Field(640, ge=16, description="Frames each chunk owns (writes).")
    overlap_frames: int = Field(32, ge=0, description="Frames before a chunk's start that it also runs (alignment and warm-up).")
    resumable: bool = Field(True, description="Keep each finished chunk's results under OUT/.vdp until the outputs are published, so a resumed job never recomputes it (scratch disk: every layer of the video).")

    @model_validator(mode="after")
    def _overlap_smaller(self) -> "ChunkingSpec":
        if self.overlap_frames >= self.chunk_frames:
            raise ValueError(f"overlap_frames ({self.overlap_frames}) must be smaller than chunk_frames ({self.chunk_frames})")
        return self


class ResourcesSpec(_Strict):
    """Where and how much."""

    device: Device = "auto"
    batch_frames: int = Field(16, ge=1, le=1024, description="Frames per decoded batch.")
    max_in_flight: int = Field(4, ge=1, le=256, description="Batches in flight per stream (bounds memory).")
    gpus_per_stage: float = Field(1.0, gt=0, le=8, description="GPUs each model actor takes (fractions share a GPU).")
    batch_timeout_s: float = Field(600.0, gt=0, description="Longest one batch may take in one stage.")
    threads: int | None = Field(None, ge=1, description="torch CPU threads per stage (default: torch's).")
    stage_gpus: dict[str, float] = Field(default_factory=dict, description="GPUs per actor of one stage, overriding gpus_per_stage, e.g. {\"matte\": 0.5}.")
    replicas: dict[str, int] = Field(default_factory=dict, description="Actors per stage, e.g. {\"depth\": 4}; unlisted stages are planned from the cluster's GPUs and each stage's measured cost (1 without GPUs).")
    object_store_budget_mb: float | None = Field(None, gt=0, description="Most object-store memory the job's in-flight batches may hold (default: a quarter of the cluster's object store).")
    max_attempts: int = Field(3, ge=1, le=100, description="Runs of one chunk before the job fails, when the model actors running it die.")
    memory_budget_mb: float | None = Field(None, gt=0, description="Most memory the job's full-resolution frames and layers may need (estimated from the input's size before running; models' working memory not counted); over it the job fails before any stage starts.")

    @model_validator(mode="after")
    def _per_stage(self) -> "ResourcesSpec":
        problems, stages = [], ("depth", "refine", "matte", "stereo")
        for field_name in ("stage_gpus", "replicas"):
            unknown = sorted(set(getattr(self, field_name)) - set(stages))
            if unknown:
                problems.append(f"{field_name} names unknown stages {unknown}; allowed: {list(stages)}")
        for stage, gpus in self.stage_gpus.items():
            if not 0 < gpus <= 8 or (gpus > 1 and gpus != int(gpus)):
                problems.append(f"stage_gpus[{stage!r}] must be in (0, 1] or a whole number up to 8, got {gpus}")
        for stage, n in self.replicas.items():
            if not 1 <= n <= 1024:
                problems.append(f"replicas[{stage!r}] must be between 1 and 1024, got {n}")
        if self.gpus_per_stage > 1 and self.gpus_per_stage != int(self.gpus_per_stage):
            problems.append(f"gpus_per_stage above 1 must be a whole number, got {self.gpus_per_stage}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class JobSpec(_Strict):
    """A complete job: input, stages, outputs and execution options."""

    input: str = Field(..., min_length=1, description="Video path (or an upload id on the gateway).")
    stages: StagesSpec = Field(default_factory=StagesSpec)
    outputs: list[OutputSpec] = Field(default_factory=list)
    chunking: ChunkingSpec = Field(default_factory=ChunkingSpec)
    precision: Precision = "auto"
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    max_frames: int | None = Field(None, ge=1, description="Process only the first N frames.")
    scene_cuts: bool = Field(False, description="Detect shot boundaries and restart temporal state at each cut.")

    @model_validator(mode="after")
    def _outputs_have_producers(self) -> "JobSpec":
        produced = {"depth"} if self.stages.depth else set()
        if self.stages.matte:
            produced.add("alpha")
        if self.stages.stereo:
            produced.add("stereo")
        missing = [o.kind for o in self.outputs if OUTPUT_NEEDS[o.kind] not in produced]
        if missing:
            raise ValueError(f"outputs {missing} need a stage that is not enabled "
                             f"(enabled stages: {self.stages.enabled() or 'none'})")
        names = [output_name(o) for o in self.outputs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"output names must be unique, repeated: {dupes}")
        return self

    # -- construction helpers -------------------------------------------------------------

    @classmethod
    def parse(cls, data: dict[str, Any]) -> "JobSpec":
        """Validate `data`, raising `SpecError` that names each bad field."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise SpecError(format_validation_error(exc)) from None

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> "JobSpec":
        """Read a spec from JSON or YAML, with top-level overrides (e.g. input=...)."""
        data = _read_mapping(Path(path))
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.parse(data)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "JobSpec":
        """A named preset from ``configs/`` with top-level overrides (e.g. input=...)."""
        data = load_preset(name)
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.parse(data)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)


def output_name(o: OutputSpec) -> str:
    """File or folder name of an output inside the job's output directory."""
    if o.name:
        return o.name
    return {
        "depth_npz": "depth.npz", "depth_npy": "depth_npy", "depth_png16": "depth_png16",
        "depth_color_mp4": "depth_color.mp4", "depth_preview_mp4": "depth_preview.mp4",
        "alpha_mp4": "alpha.mp4", "foreground_webm": "foreground.webm", "rgba_png": "rgba_png",
        "composite_mp4": "composite.mp4",
        "sbs_full": "stereo_LRF_Full_SBS.mp4", "sbs_half": "stereo_LR_Half_SBS.mp4",
        "tb_full": "stereo_Full_TB.mp4", "tb_half": "stereo_Half_TB.mp4",
        "anaglyph": "stereo_Anaglyph.mp4",
    }[o.kind]


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: ``field.path: message (got value)``."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "spec"
        msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        got_s = "" if isinstance(got, dict) or err["type"] == "missing" else f" (got {got!r})"
        lines.append(f"{loc}: {msg}{got_s}")
    return "invalid job spec:\n  " + "\n  ".join(lines)


def list_presets() -> dict[str, str]:
    """Preset name -> one-line description, from ``configs/*.yaml``."""
    out = {}
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        data = _read_mapping(path)
        out[path.stem] = str(data.get("description", ""))
    return out


def load_preset(name: str) -> dict[str, Any]:
    """The preset's mapping (without its description)."""
    path = CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        raise SpecError(f"unknown preset {name!r}; available: {', '.join(list_presets()) or 'none'}")
    data = _read_mapping(path)
    data.pop("description", None)
    return data


def _read_mapping(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"cannot read spec file {path}: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SpecError(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path} must hold a mapping of spec fields, got {type(data).__name__}")
    return data
