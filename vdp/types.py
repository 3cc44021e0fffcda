"""Value types shared by I/O, stages, engine and outputs.

`VideoInfo` describes a stream (what `vdp.io.probe` returns); `FrameBatch` is the unit that
flows between stages: a run of consecutive frames plus the per-frame results ("layers")
that stages add on the way, e.g. ``depth`` [T,H,W] float32 or ``alpha`` [T,H,W] float32.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

import torch


@dataclass(frozen=True)
class VideoInfo:
    """Metadata of a video stream, in display orientation.

    Attributes:
        path: Source file.
        num_frames: Number of frames in the stream (counted by a scan; the container's own
            count is only a hint, see `declared_frames`).
        fps: Average frame rate (frames / duration).
        duration_seconds: Stream duration.
        width: Display width (after rotation).
        height: Display height (after rotation).
        codec: Codec name, e.g. ``h264``.
        pixel_format: Source pixel format, e.g. ``yuv420p10le``.
        rotation_degrees: Rotation applied to reach display orientation.
        has_audio: Whether the file has an audio stream.
        bit_depth: Bits per component of the source.
        declared_frames: The frame count the container declares (None when it declares none).
        warnings: What about the file is unusual but handled (e.g. fewer frames than declared).
        colour_primaries: The stream's colour primaries, e.g. ``bt709``, ``bt2020`` ("" unsaid).
        colour_transfer: Its transfer, e.g. ``bt709``, ``smpte2084`` (PQ), ``arib-std-b67`` (HLG).
        colour_matrix: Its YUV matrix, e.g. ``bt709``, ``bt2020nc``.
        colour_range: ``tv`` (limited) or ``pc`` (full).
        tone_mapping: The operator that maps this HDR source to SDR BT.709 as it decodes ("" when
            frames are decoded as they are: SDR, or HDR kept).
        video_stream: Absolute index of the decoded video stream in the file (None: unknown).
        audio_stream: Absolute index of the audio track muxed into video outputs (None: ffmpeg's
            default pick when `has_audio`; `vdp.io.probe` always fills it in).
        streams_used: The video stream and audio track used, with position, codec and language
            (see `vdp.io.streams.StreamChoice`; None: not looked up).
        keyframes: Indices of the frames decoding can start from, from `vdp.io.probe`'s scan
            (None: unknown, or a keyframe at least every 4 frames, where it makes no difference
            where decoding starts); chunk plans start on them (`vdp.engine.chunks`). Not in
            `to_dict`.
    """

    path: str
    num_frames: int
    fps: float
    duration_seconds: float
    width: int
    height: int
    codec: str
    pixel_format: str = ""
    rotation_degrees: int = 0
    has_audio: bool = False
    bit_depth: int = 8
    declared_frames: int | None = None
    warnings: tuple[str, ...] = ()
    colour_primaries: str = ""
    colour_transfer: str = ""
    colour_matrix: str = ""
    colour_range: str = ""
    tone_mapping: str = ""
    video_stream: int | None = None
    audio_stream: int | None = None
    streams_used: dict[str, Any] | None = None
    keyframes: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items() if k != "keyframes"}


def _to_wire(t: torch.Tensor) -> Any:
    if t.device.type != "cpu" or t.requires_grad:
        return t
    try:
        return t.numpy()
    except TypeError:  # bfloat16 and other dtypes numpy lacks
        return t


_BORROW = False  # see `borrow_store_memory`


def borrow_store_memory(on: bool = True) -> None:
    """Batches unpickled in this process from now on keep read-only buffers (Ray's object store
    memory) instead of copying them (at 1080p, 3-5 ms of CPU per float32 frame).

    For a process that only reads batches (the chunk writers): nothing may change such a
    tensor in place, and a batch kept beyond the call that received it should be copied
    (`FrameBatch.owned`), or it keeps its object pinned in the store.
    """
    global _BORROW
    _BORROW = bool(on)


def _from_wire(x: Any) -> torch.Tensor:
    import warnings

    import numpy as np

    if not isinstance(x, np.ndarray):
        return x
    if x.flags.writeable:
        return torch.from_numpy(x)
    if not _BORROW:  # the object store's read-only memory: copied once
        return torch.from_numpy(x.copy())
    with warnings.catch_warnings():  # "not writable": borrowed on purpose, read only
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(x)


def _unpickle_batch(frames: Any, indices: Any, pts: Any, layers: dict[str, Any], starts_segment: bool) -> "FrameBatch":
    return FrameBatch(_from_wire(frames), _from_wire(indices), _from_wire(pts),
                      {k: _from_wire(v) for k, v in layers.items()}, starts_segment)


@dataclass
class FrameBatch:
    """Consecutive frames of one stream and the per-frame layers computed so far.

    Attributes:
        frames: RGB uint8 ``[T,3,H,W]``.
        indices: Frame indices in the source, int64 ``[T]``, strictly increasing.
        pts_seconds: Presentation times, float64 ``[T]``.
        layers: Per-frame results keyed by name; every tensor's first dim is ``T``.
        starts_segment: The first frame begins a new segment (e.g. a shot after a scene cut):
            runners flush every stage and restart its temporal state before this batch.
    """

    frames: torch.Tensor
    indices: torch.Tensor
    pts_seconds: torch.Tensor
    layers: dict[str, torch.Tensor] = field(default_factory=dict)
    starts_segment: bool = False

    def __post_init__(self) -> None:
        f = self.frames
        if f.dtype != torch.uint8 or f.ndim != 4 or f.shape[1] != 3:
            raise ValueError(f"frames must be uint8 [T,3,H,W], got {f.dtype} {tuple(f.shape)}")
        t = f.shape[0]
        if tuple(self.indices.shape) != (t,) or tuple(self.pts_seconds.shape) != (t,):
            raise ValueError(f"indices {tuple(self.indices.shape)} and pts_seconds "
                             f"{tuple(self.pts_seconds.shape)} must both be [{t}]")
        for name, layer in self.layers.items():
            if layer.shape[0] != t:
                raise ValueError(f"layer {name!r} has {layer.shape[0]} frames, batch has {t}")

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def __reduce__(self) -> tuple:
        """Pickled as numpy arrays: Ray moves those through its object store with one copy each
        way, where torch's own pickling of a CPU tensor copies its bytes twice more (at 1080p,
        ~15 ms of CPU per float32 frame on each side). The receiver gets tensors of its own
        (writable) memory. CUDA tensors and dtypes numpy lacks keep torch's pickling."""
        return (_unpickle_batch, (_to_wire(self.frames), _to_wire(self.indices), _to_wire(self.pts_seconds),
                                  {k: _to_wire(v) for k, v in self.layers.items()}, self.starts_segment))

    def __repr__(self) -> str:
        first = int(self.indices[0]) if len(self) else None
        layers = {k: tuple(v.shape) for k, v in self.layers.items()}
        return f"FrameBatch(frames={tuple(self.frames.shape)}, first_index={first}, layers={layers})"

    @property
    def height(self) -> int:
        return int(self.frames.shape[2])

    @property
    def width(self) -> int:
        return int(self.frames.shape[3])

    def with_layers(self, **layers: torch.Tensor) -> "FrameBatch":
        """A copy with extra (or replaced) layers."""
        return replace(self, layers={**self.layers, **layers})

    def slice(self, start: int, stop: int | None = None) -> "FrameBatch":
        """Frames ``start:stop`` (positions in this batch) with their layers."""
        s = slice(start, stop)
        return FrameBatch(self.frames[s], self.indices[s], self.pts_seconds[s],
                          {k: v[s] for k, v in self.layers.items()},
                          starts_segment=self.starts_segment and start == 0)

    def compact(self) -> "FrameBatch":
        """This batch, or a copy owning its memory when any tensor is a view of a larger one.

        A stage that holds a slice of a batch across calls compacts it, so the slice does
        not keep the whole batch it was cut from alive.
        """
        tensors = [self.frames, self.indices, self.pts_seconds, *self.layers.values()]
        if all(t.untyped_storage().nbytes() <= t.nbytes for t in tensors):
            return self
        return self.owned()

    def owned(self) -> "FrameBatch":
        """A copy in memory of its own (e.g. of a batch borrowing the object store's memory,
        `borrow_store_memory`, that is to be kept)."""
        return FrameBatch(self.frames.clone(), self.indices.clone(), self.pts_seconds.clone(),
                          {k: v.clone() for k, v in self.layers.items()},
                          starts_segment=self.starts_segment)

    @staticmethod
    def empty(height: int, width: int) -> "FrameBatch":
        """A batch with no frames (what a windowed stage returns while it buffers)."""
        return FrameBatch(torch.empty(0, 3, height, width, dtype=torch.uint8),
                          torch.empty(0, dtype=torch.int64), torch.empty(0, dtype=torch.float64))

    @staticmethod
    def concat(batches: list["FrameBatch"]) -> "FrameBatch":
        """Join batches in order; all must carry the same layer names."""
        batches = [b for b in batches if len(b)] or batches[:1]
        if not batches:
            raise ValueError("concat needs at least one batch")
        names = set(batches[0].layers)
        for b in batches[1:]:
            if set(b.layers) != names:
                raise ValueError(f"layer names differ: {sorted(names)} vs {sorted(b.layers)}")
        return FrameBatch(torch.cat([b.frames for b in batches]),
                          torch.cat([b.indices for b in batches]),
                          torch.cat([b.pts_seconds for b in batches]),
                          {n: torch.cat([b.layers[n] for b in batches]) for n in names},
                          starts_segment=batches[0].starts_segment)


JobStatus = Literal["running", "succeeded", "failed", "cancelled"]


@dataclass
class JobReport:
    """What a job's ``report.json`` holds (keys in this order).

    Attributes:
        status: ``running`` while the job runs, then ``succeeded``, ``failed`` or ``cancelled``.
        input: The source's `VideoInfo` as a mapping.
        runner: ``local`` (in process) or ``ray``.
        device: Where the models ran (Ray: the replicas' devices, comma-separated).
        frames: Frames written.
        wall_seconds: From the job's start to its end, after the process has loaded vdp's
            libraries.
        stages: Per stage (``decode``, each model stage, ``write``): frames, busy seconds, fps.
        outputs: Output files and folders, relative to the output directory.
        fallbacks: Windows re-run in fp32 after non-finite values (one record each).
        warnings: Distinct warnings of the stages, the merge and the engine.
        error: ``Type: message`` of the failure, else None.
        environment: Versions, host and pid of the driver.
        resumed: Whether the job continued an earlier run's ledger.
        chunks: The chunk plan, reused chunks, seams, runs and retries.
        placement: GPUs, replicas and the object-store budget (Ray runs).
    """

    status: JobStatus = "running"
    input: dict[str, Any] = field(default_factory=dict)
    runner: str = ""
    device: str = ""
    frames: int = 0
    wall_seconds: float = 0.0
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    fallbacks: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    resumed: bool = False
    chunks: dict[str, Any] = field(default_factory=dict)
    placement: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The ``report.json`` mapping."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "JobReport":
        """A report read back from ``report.json`` (unknown keys are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
