"""JobSpec: the one description of a job, shared by the CLI, the REST gateway and the SDK.

A spec says what to read (`input`), which stages run (`stages`), what to write (`outputs`)
and how (`chunking`, `precision`, `resources`). Which stages and output kinds exist, and what
layers each needs and produces, comes from `vdp.catalog`: a spec whose chain cannot work
(an output reading a layer no stage of the job produces) fails here, before anything runs.
Named presets (package data ``vdp/presets/*.yaml``, read by `vdp.spec_files`) are specs
without an input; `JobSpec.from_preset` fills it in.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError, field_validator,
    model_validator,
)

from vdp import catalog
from vdp.errors import SpecError
# re-exported: callers read presets and spec files through vdp.spec
from vdp.spec_files import list_presets, load_preset, read_spec_file, with_synthetic_weights  # noqa: F401

Precision = Literal["auto", "fp16", "bf16", "fp32"]
Device = Literal["auto", "cpu", "cuda"]
DepthModel = Literal["vits", "vitb", "vitl", "metric_vits", "metric_vitb", "metric_vitl"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
DepthKind = Literal["relative", "metric"]

#: Names a job's folder holds besides its outputs (compared case-insensitively): the resolved
#: spec, the report, the engine's work folder (`vdp.engine.ledger.WORKDIR`) and the gateway's
#: cache of folder archives. No output may take one of them.
RESERVED_OUTPUT_NAMES = frozenset({"spec.json", "report.json", ".vdp", ".archives"})


class _Strict(BaseModel):
    # Numbers and flags are strict (no "8" or true for an int, no "yes" for a bool) and finite.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class DepthSpec(_Strict):
    """Video Depth Anything options."""

    model: DepthModel = "vits"
    input_size: int = Field(518, ge=28, le=2044, strict=True, description="Shorter side fed to the network (multiple of 14 after snapping).")
    max_res: int = Field(1280, ge=64, le=16384, strict=True, description="Frames whose longer side exceeds this are downscaled before depth.")
    mode: Literal["offline", "stream"] = Field("offline", description="Official windowed procedure, or per-frame streaming with cached temporal states.")
    checkpoint: str | None = Field(None, max_length=4096, description="Checkpoint path; default: the model directory's official file.")
    synthetic_weights: bool = Field(False, strict=True, description="Run with deterministic synthetic weights (tests/demos only: not real depth).")

    @property
    def kind(self) -> DepthKind:
        """``metric`` (depth in metres) for the ``metric_*`` models, else ``relative``."""
        return "metric" if self.model.startswith("metric") else "relative"


class RefineSpec(_Strict):
    """SSM temporal refiner options."""

    checkpoint: str | None = Field(None, max_length=4096, description="Checkpoint path; default: the one shipped with vdp.")
    use_confidence: bool = Field(True, strict=True, description="Feed the refiner the confidence derived from the teacher's temporal agreement (False: run without it).")
    blend: float = Field(1.0, ge=0, le=1, strict=True, description="Share of the refiner's log-depth correction applied (0: depth unchanged, 1: fully refined).")
    max_frame_shift: float | None = Field(None, ge=0, le=0.2, strict=True, description="Do-no-harm limit: the most the refiner may move a frame's median log depth (0.003: every frame's scale stays within about 0.3% of the teacher's; fewer frames made worse than the teacher, less scale flicker removed). None: no limit.")
    windows: tuple[Annotated[int, Field(ge=2, le=256, strict=True)], Annotated[int, Field(ge=0, le=255, strict=True)]] | None = Field(None, description="Refiner windows as [frames, overlap]; default: the checkpoint's (the shipped v1: [32, 8]). [12, 6], the windows v1 trained on, holds ~18-22 full-resolution depth frames instead of ~56 (less memory at 4K and 8K) for more flicker and ~1.4x the refiner's cost.")

    @model_validator(mode="after")
    def _windows_overlap(self) -> "RefineSpec":
        if self.windows is not None and self.windows[1] >= self.windows[0]:
            raise ValueError(f"refine.windows: the overlap ({self.windows[1]}) must be smaller than the "
                             f"window ({self.windows[0]} frames)")
        return self


class MatteSpec(_Strict):
    """Robust Video Matting options."""

    variant: Literal["mobilenetv3", "resnet50"] = "mobilenetv3"
    refiner: Literal["deep_guided_filter", "fast_guided_filter"] = "deep_guided_filter"
    downsample_ratio: float | None = Field(None, gt=0, le=1, strict=True, description="None: the official automatic rule.")
    frames_per_call: int = Field(12, ge=1, le=256, strict=True)
    checkpoint: str | None = Field(None, max_length=4096)
    synthetic_weights: bool = Field(False, strict=True)


class StereoSpec(_Strict):
    """Stereo view synthesis from depth (depth-image-based rendering)."""

    divergence: float = Field(2.0, gt=0, le=10, strict=True, description="Total disparity range in % of the image width.")
    convergence: float = Field(0.5, ge=0, le=1, strict=True, description="Which depth sits at the screen plane (0 nearest, 1 farthest).")
    ipd_offset: float = Field(0.0, ge=-10, le=20, strict=True, description=(
        "IPD offset as in iw3: parallax added to every pixel on top of the depth-based divergence, in %"
        " of the image width (positive: the left view moves right and the right view left by half of it"
        " each, the whole scene comes toward the viewer; negative: it moves back). 0: none. Applies to"
        " every layout made from the two views (not RGBD, which has no second view)."))
    edge_dilation: int = Field(2, ge=0, le=16, strict=True, description="Foreground depth dilation in pixels against halos.")
    lookahead_frames: int = Field(8, ge=0, le=120, strict=True, description="Frames the disparity range estimate may look ahead.")


def _stages_schema(schema: dict[str, Any]) -> None:
    """Built-in stages are typed fields; other catalog stages are listed with opaque options."""
    props = schema.setdefault("properties", {})
    for entry in catalog.stages():
        props.setdefault(entry.name, {"anyOf": [{"type": "object"}, {"type": "null"}], "default": None})
    schema["additionalProperties"] = False


class StagesSpec(_Strict):
    """Which stages run; a stage that is null (absent) does not run.

    The built-in stages are fields (so the REST schema shows their options); any other stage
    of `vdp.catalog` is accepted under its name and validated with its entry's options model.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True, json_schema_extra=_stages_schema)

    depth: DepthSpec | None = None
    refine: RefineSpec | None = None
    matte: MatteSpec | None = None
    stereo: StereoSpec | None = None

    @model_validator(mode="after")
    def _catalog_stages(self) -> "StagesSpec":
        extra = self.__pydantic_extra__ or {}
        known = [e.name for e in catalog.stages()]
        for name, value in list(extra.items()):
            if name not in known:
                raise ValueError(f"unknown stage {name!r}; available: {', '.join(known)}")
            options = catalog.stage(name).options
            if value is not None and not isinstance(value, options):
                extra[name] = options.model_validate(value)
        return self

    def enabled(self) -> list[str]:
        """Stage names in pipeline order (the catalog's)."""
        return [e.name for e in catalog.stages() if getattr(self, e.name, None) is not None]

    def options(self, name: str) -> BaseModel | None:
        """The options of stage `name`, or None when it does not run."""
        return getattr(self, name, None)


class OutputSpec(_Strict):
    """One output file or folder."""

    kind: str = Field(..., json_schema_extra=lambda schema: schema.update(
        enum=[e.kind for e in catalog.outputs()]), description="An output kind of `vdp.catalog`.")
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
                             description="File or folder name inside the output directory; default from the kind.")
    colormap: Literal["turbo", "inferno", "gray"] = "turbo"
    background: str = Field("#00b140", pattern=r"^#[0-9a-fA-F]{6}$", description="Composite background colour.")
    crf: int = Field(18, ge=0, le=51, strict=True, description="Quality of lossy video outputs (lower is better).")
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                    "veryslow"] = Field("ultrafast", description="x264/x265 speed of MP4 outputs: slower presets give smaller files at the same crf (ultrafast costs ~1/3 of veryfast's CPU for ~2x the size).")
    encoder: Literal["auto", "cpu", "x265", "nvenc"] = Field("auto", description="MP4 encoder: 'auto' NVENC where it works on the machine (probed once), else x264 (x265 for frames beyond H.264 decoders); 'cpu' the same without NVENC; 'x265' HEVC on the CPU always (~half the size); 'nvenc' fails without NVENC.")
    threads: int | None = Field(None, ge=1, le=64, strict=True, description="x264/x265 threads of an MP4 output (default: one per 1080p of pixels for x264 at ultrafast, else the encoder's own).")
    vp9_deadline: Literal["realtime", "good"] = Field("realtime", description="libvpx-vp9 deadline of WebM outputs ('good' with a low vp9_speed: smaller files, ~6x the CPU).")
    vp9_speed: int = Field(8, ge=0, le=8, strict=True, description="libvpx-vp9 -cpu-used of WebM outputs (0 slowest/best .. 8 fastest).")
    png_level: int = Field(1, ge=0, le=3, strict=True, description="Compression level of PNG outputs (all lossless; higher: smaller, slower).")
    point_stride: int = Field(4, ge=1, le=64, strict=True, description="point_cloud_ply: every n-th pixel in each direction becomes a point.")
    max_side: int | None = Field(None, ge=16, le=16384, strict=True, description="depth_color_mp4, depth_preview_mp4: longest side of each picture (each half of the preview), beyond which it is scaled down; default 3840 (the depth is made at the model's input size: a larger picture adds no detail); 16384 keeps any source's size.")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        kinds = [e.kind for e in catalog.outputs()]
        if kind not in kinds:
            raise ValueError(f"unknown output kind {kind!r}; available: {', '.join(kinds)}")
        return kind

    @model_validator(mode="after")
    def _scalable(self) -> "OutputSpec":
        if self.max_side is not None and catalog.output(self.kind).max_side is None:
            scalable = [e.kind for e in catalog.outputs() if e.max_side is not None]
            raise ValueError(f"max_side applies to {', '.join(scalable)}; {self.kind!r} keeps the "
                             f"source's size")
        return self

    def picture_side(self) -> int | None:
        """Longest side of this output's pictures (each half of a side-by-side), None: the source's."""
        return self.max_side or catalog.output(self.kind).max_side

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str | None) -> str | None:
        if name is not None and name.lower() in RESERVED_OUTPUT_NAMES:
            raise ValueError(f"{name!r} is reserved in a job's folder (reserved: "
                             f"{sorted(RESERVED_OUTPUT_NAMES)}); choose another output name")
        return name


class CameraSpec(_Strict):
    """Pinhole intrinsics of the input (pixels of a ``width x height`` frame), or its horizontal FOV."""

    fx: float | None = Field(None, gt=0, le=1e6, strict=True, description="Focal length in pixels (x).")
    fy: float | None = Field(None, gt=0, le=1e6, strict=True, description="Focal length in pixels (y); default fx.")
    cx: float | None = Field(None, ge=-1e6, le=1e6, strict=True, description="Principal point x; default the centre.")
    cy: float | None = Field(None, ge=-1e6, le=1e6, strict=True, description="Principal point y; default the centre.")
    width: int | None = Field(None, ge=1, le=65536, strict=True, description="Frame width the pixel values refer to; default the input's.")
    height: int | None = Field(None, ge=1, le=65536, strict=True, description="Frame height the pixel values refer to; default the input's.")
    hfov_deg: float | None = Field(None, gt=1, lt=179, strict=True, description="Horizontal field of view, when fx is not known.")

    @model_validator(mode="after")
    def _fx_or_fov(self) -> "CameraSpec":
        if (self.fx is None) == (self.hfov_deg is None):
            raise ValueError("give exactly one of fx (pixels) or hfov_deg")
        return self


class ClipSpec(_Strict):
    """Which part of the input runs, at what frame rate and size (see `vdp.io.prepare`)."""

    start_s: float = Field(0.0, ge=0, le=1e7, strict=True, description="Start time in seconds.")
    end_s: float | None = Field(None, gt=0, le=1e7, strict=True, description="End time in seconds (default: the end).")
    target_fps: float | None = Field(None, gt=0, le=240, strict=True, description="Resample to this frame rate.")
    max_res: int | None = Field(None, ge=16, le=16384, strict=True, description="Downscale so the longer side is at most this.")

    @model_validator(mode="after")
    def _ordered(self) -> "ClipSpec":
        if self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError(f"end_s ({self.end_s}) must be after start_s ({self.start_s})")
        return self


class StreamsSpec(_Strict):
    """Which video stream and audio track of the input a job uses (see `vdp.io.streams`)."""

    video: int | None = Field(None, ge=0, le=1023, strict=True, description="Video stream by position among the input's video streams (0: the first; default: ffmpeg's pick).")
    audio: Annotated[int, Field(ge=0, le=1023, strict=True)] | Literal["none"] | None = Field(None, description="Audio track muxed into video outputs, by position among the input's audio tracks (0: the first; 'none': no audio; default: ffmpeg's pick). Exactly one track is muxed.")


class ChunkingSpec(_Strict):
    """Splitting long videos into overlapping chunks that run in parallel.

    Each chunk owns about `chunk_frames` frames (a boundary moves by up to a quarter of it so
    that the chunk's decoding starts on a keyframe, see `vdp.engine.chunks`); every chunk after
    the first also runs the `overlap_frames` before its start, to align and cross-fade relative
    depth and to warm the state of recurrent stages (see `vdp.engine.merge`).
    """

    enabled: bool = Field(False, strict=True)
    chunk_frames: int = Field(640, ge=16, le=1_000_000, strict=True, description="Frames each chunk owns (writes), give or take a quarter to start on a keyframe.")
    overlap_frames: int = Field(32, ge=0, le=10_000, strict=True, description="Frames before a chunk's start that it also runs (alignment and warm-up).")
    resumable: bool = Field(True, strict=True, description="Keep each finished chunk's results under OUT/.vdp until the outputs are published, so a resumed job never recomputes it (scratch disk: every layer of the video).")

    @model_validator(mode="after")
    def _overlap_smaller(self) -> "ChunkingSpec":
        if self.overlap_frames >= self.chunk_frames:
            raise ValueError(f"overlap_frames ({self.overlap_frames}) must be smaller than chunk_frames ({self.chunk_frames})")
        return self


#: Most pixels of a decoded batch (`ResourcesSpec.frames_per_batch`): 16 frames up to 1440p,
#: 8 of 4K, 2 of 8K.
BATCH_PIXELS = 1 << 26


class ResourcesSpec(_Strict):
    """Where and how much."""

    device: Device = "auto"
    batch_frames: int = Field(16, ge=1, le=1024, strict=True, description="Frames per decoded batch (at most: batches of 4K and larger frames hold fewer, see frames_per_batch).")
    max_in_flight: int = Field(4, ge=1, le=256, strict=True, description="Batches in flight per stream (bounds memory).")
    gpus_per_stage: float = Field(1.0, gt=0, le=8, strict=True, description="GPUs each model actor takes (fractions share a GPU).")
    batch_timeout_s: float = Field(600.0, gt=0, le=86_400, strict=True, description="Longest one batch may take in one stage.")
    threads: int | None = Field(None, ge=1, le=1024, strict=True, description="torch CPU threads per stage (default: torch's).")
    stage_gpus: dict[str, StrictFloat | StrictInt] = Field(default_factory=dict, description="GPUs per actor of one stage, overriding gpus_per_stage, e.g. {\"matte\": 0.5}.")
    replicas: dict[str, StrictInt] = Field(default_factory=dict, description="Actors per stage, e.g. {\"depth\": 4}; unlisted stages are planned from the cluster's GPUs and each stage's measured cost (1 without GPUs).")
    fuse_stages: bool | None = Field(None, strict=True, description="Run the stages as one chain inside one actor per GPU (batches pass from model to model in memory, never through the object store). Default: when they would share GPUs (fewer GPUs than stages). Stages given different replica counts stay apart.")
    write_on_workers: bool = Field(True, strict=True, description="On Ray, each chunk's outputs are written where the chunk ran (in parts joined at the end, without re-encoding); off: every frame comes back to the driver, which writes them.")
    object_store_budget_mb: float | None = Field(None, gt=0, le=1 << 24, strict=True, description="Most object-store memory the job's in-flight batches may hold (default: a quarter of the cluster's object store).")
    max_attempts: int = Field(3, ge=1, le=100, strict=True, description="Runs of one chunk before the job fails, when the model actors running it die.")
    actor_idle_s: float | None = Field(300.0, ge=0, le=30 * 86_400, strict=True, description="Seconds a model actor may stay idle (no stream of a live job) before it is released with its GPUs; 0 or null keeps it until `vdp actors release`.")
    memory_budget_mb: float | None = Field(None, gt=0, le=1 << 24, strict=True, description="Most memory the job's full-resolution frames, layers and video encoders may need (estimated from the input's size before running; models' working memory not counted); over it the job fails before any stage starts.")

    @model_validator(mode="after")
    def _per_stage(self) -> "ResourcesSpec":
        problems, stages = [], [e.name for e in catalog.stages()]
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

    def frames_per_batch(self, width: int, height: int) -> int:
        """Frames per decoded batch of `width` x `height` frames: `batch_frames`, fewer where
        that would pass `BATCH_PIXELS` (at least one). 16 frames of 8K are 1.6 GB of RGB, and
        a batch or two are decoded ahead of the one being processed."""
        return max(1, min(self.batch_frames, BATCH_PIXELS // max(1, width * height)))


class JobSpec(_Strict):
    """A complete job: input, stages, outputs and execution options."""

    input: str = Field(..., min_length=1, max_length=4096, description="Video path (or an upload id on the gateway).")
    stages: StagesSpec = Field(default_factory=StagesSpec)
    outputs: list[OutputSpec] = Field(default_factory=list, max_length=64)
    chunking: ChunkingSpec = Field(default_factory=ChunkingSpec)
    precision: Precision = "auto"
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    max_frames: int | None = Field(None, ge=1, le=100_000_000, strict=True, description="Process only the first N frames.")
    scene_cuts: bool = Field(False, strict=True, description="Detect shot boundaries and restart temporal state at each cut.")
    hdr: Literal["tonemap", "keep"] = Field("tonemap", description="HDR (PQ/HDR10, HLG) input: 'tonemap' decodes it as SDR BT.709 (operator named in report.json); 'keep' decodes the HDR signal as it is and writes the outputs that carry the video's pixels (depth preview, stereo, VR180, composite) as 10-bit HEVC (Main10) with the source's transfer and BT.2020 tags. No effect on SDR input.")
    camera: CameraSpec | None = Field(None, description="Input camera intrinsics for 3D outputs (EXR/PLY sidecars, VR180); default: an estimated 70-degree horizontal FOV.")
    output_names: Literal["kind", "input"] = Field("kind", description="'input': every output file starts with the input's stem (clip_LRF_Full_SBS.mp4; `vdp run` default); 'kind': names from the kind alone (depth.npz).")
    clip: ClipSpec | None = Field(None, description="Trim, resample and downscale the input first.")
    streams: StreamsSpec | None = Field(None, description="Which video stream and audio track of the input to use (default: ffmpeg's picks).")
    overwrite: bool = Field(False, strict=True, description="Replace outputs already in the output folder (otherwise the job refuses to start).")

    @model_validator(mode="after")
    def _chain_works(self) -> "JobSpec":
        problems = catalog.chain_problems(self.stages.enabled(), [o.kind for o in self.outputs])
        for kind in dict.fromkeys(o.kind for o in self.outputs):
            wanted = catalog.output(kind).depth_kind
            if wanted is not None and self.depth_kind not in (None, wanted):
                problems.append(f"output {kind} needs {wanted} depth (stages.depth.model: "
                                f"{', '.join(m for m in get_args(DepthModel) if m.startswith(wanted))}), "
                                f"this job's is {self.depth_kind}")
        names = [output_name(o, self.output_stem()) for o in self.outputs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            problems.append(f"output names must be unique, repeated: {dupes}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def depth_kind(self) -> DepthKind | None:
        """What the ``depth`` layer holds (None when the job has no depth stage)."""
        return None if self.stages.depth is None else self.stages.depth.kind

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
        data = read_spec_file(Path(path))
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.parse(data)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "JobSpec":
        """A named preset (`list_presets`) with top-level overrides (e.g. input=...)."""
        data = load_preset(name)
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.parse(data)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    def output_stem(self) -> str | None:
        """The input's stem that output names start with (None when names come from kinds)."""
        from vdp.naming import input_stem

        return input_stem(self.input) if self.output_names == "input" else None


def output_name(o: OutputSpec, stem: str | None = None) -> str:
    """File or folder name of an output inside the job's output directory (`stem`: named after
    the input, see `vdp.naming`)."""
    if o.name:
        return o.name
    return catalog.output(o.kind).name_for(stem)


def check_precision(precision: str) -> str:
    """`precision` if it is one of `PRECISIONS`.

    Raises:
        SpecError: Any other value (the message lists the allowed ones).
    """
    if precision not in PRECISIONS:
        raise SpecError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def check_depth_kind(kind: str) -> str:
    """`kind` if it is ``relative`` or ``metric``.

    Raises:
        SpecError: Any other value.
    """
    kinds = get_args(DepthKind)
    if kind not in kinds:
        raise SpecError(f"depth_kind must be one of {', '.join(kinds)}, got {kind!r}")
    return kind


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: ``field.path: message (got value)``."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "spec"
        msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        got_s = "" if isinstance(got, dict) or err["type"] == "missing" else f" (got {_excerpt(got)})"
        lines.append(f"{loc}: {msg}{got_s}")
    return "invalid job spec:\n  " + "\n  ".join(lines)


def _excerpt(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
