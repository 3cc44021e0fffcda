"""DepthStage: Video Depth Anything on the Stage contract (offline windows or streaming).

Offline mode runs the official windowed procedure as a state machine: batches of any size
arrive in order, at most one window of frames is held, and each frame is emitted (with layer
``depth`` float32 [T,H,W] at frame size) as soon as no later window can change it. The result
equals the official offline procedure on the whole clip. Stream mode runs the official
per-frame streaming procedure and emits every frame at once.

Precision: ``auto`` is fp16 autocast on CUDA and fp32 elsewhere. Every window (stream: every
frame) whose output is not finite under autocast is re-run in fp32 and recorded in
``self.report.fallbacks`` as a `vdp.stages.base.Fallback` (source frame indices; ``window``
is the window's index, in stream mode the frame index).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from vdp.errors import StageError
from vdp.models.video_depth_anything.inference import (OfflineDepth, OfflineState, StreamDepth,
                                                       StreamState, WindowInfo)
from vdp.models.video_depth_anything.loading import load_model
from vdp.models.video_depth_anything.video_depth import StreamCache, VideoDepthAnything
from vdp.spec import DepthSpec, JobSpec, Precision, check_precision
from vdp.stages.base import Fallback, Stage
from vdp.stages.toolkit import autocast, autocast_dtype, precision_name, weights_label
from vdp.types import FrameBatch, VideoInfo

SYNTHETIC_WARNING = "synthetic weights — not real depth"


@dataclass
class DepthState:
    """Per-stream carry of `DepthStage`.

    Attributes:
        procedure: The offline or streaming procedure's state (None until the first batch).
        held: Received frames whose depth is not out yet, in order (at most one window).
        frames_in: Frames received.
        frames_out: Frames emitted.
    """

    procedure: OfflineState | StreamState | None = None
    held: list[FrameBatch] = field(default_factory=list)
    frames_in: int = 0
    frames_out: int = 0

    @property
    def buffered_frames(self) -> int:
        """RGB frames held by the stage (the procedure's window buffer is counted separately)."""
        return sum(len(b) for b in self.held)


class DepthStage(Stage):
    """Adds layer ``depth``: relative inverse depth (or metric depth for ``metric_*`` models).

    Args:
        spec: Model, input size, ``max_res``, mode and weights.
        precision: ``auto``, ``fp16``, ``bf16`` or ``fp32``.
    """

    name: ClassVar[str] = "depth"

    def __init__(self, spec: DepthSpec, *, precision: Precision = "auto") -> None:
        super().__init__()
        self.spec = spec
        self.precision = check_precision(precision)
        self.model: VideoDepthAnything | None = None
        self.amp_dtype: torch.dtype | None = None

    @classmethod
    def config_key(cls, options: DepthSpec, job: JobSpec) -> tuple:
        return (options.model, options.input_size, options.mode, job.precision,
                weights_label(options.checkpoint, options.synthetic_weights))

    def setup(self, device: torch.device | str) -> None:
        """Load the weights (official checkpoint, strict, or synthetic) and move to `device`.

        Raises:
            WeightsError: Missing checkpoint (with the fetch hint) or a key/shape mismatch.
        """
        super().setup(device)
        model = load_model(self.spec.model, checkpoint=self.spec.checkpoint,
                           synthetic=self.spec.synthetic_weights)
        if self.spec.synthetic_weights:
            self.report.warnings.append(SYNTHETIC_WARNING)
        self.model = model.to(self.device)
        self.amp_dtype = autocast_dtype(self.precision, self.device)

    def init_state(self, info: VideoInfo) -> DepthState:
        if self.model is None:
            raise StageError("depth stage used before setup()", stage=self.name)
        return DepthState()

    def process(self, batch: FrameBatch, state: DepthState) -> tuple[FrameBatch, DepthState]:
        if self.model is None:
            raise StageError("depth stage used before setup()", stage=self.name)
        if len(batch) == 0:
            return batch.with_layers(depth=torch.empty(0, batch.height, batch.width)), state
        if state.procedure is None:
            state.procedure = self._init_procedure(batch.height, batch.width, int(batch.indices[0]))
        size = state.procedure.transform.frame_size
        if (batch.height, batch.width) != size:
            raise StageError(f"frame size changed from {size[0]}x{size[1]} to {batch.height}x{batch.width}",
                             stage=self.name, first_frame=int(batch.indices[0]))
        state.held.append(batch)
        state.frames_in += len(batch)
        frames = batch.frames.to(self.device, non_blocking=True)
        if isinstance(state.procedure, OfflineState):
            step = self._offline().push(state.procedure, frames)
            depth, state.procedure = step.depth, step.state
        else:
            depth, state.procedure = self._stream().push(state.procedure, frames)
        out = self._emit(state, depth, batch.height, batch.width)
        state.held = [b.compact() for b in state.held]
        return out, state

    def flush(self, state: DepthState) -> FrameBatch | None:
        if not isinstance(state.procedure, OfflineState) or state.procedure.finished:
            return None
        step = self._offline().finish(state.procedure)
        state.procedure = step.state
        h, w = state.procedure.transform.frame_size
        out = self._emit(state, step.depth, h, w)
        if state.held:
            raise StageError(f"{state.buffered_frames} frames left without depth at end of stream",
                             stage=self.name)
        return out if len(out) else None

    # -- internals ------------------------------------------------------------------------

    def _init_procedure(self, height: int, width: int, first_index: int) -> OfflineState | StreamState:
        kw = {"input_size": self.spec.input_size, "max_res": self.spec.max_res, "first_index": first_index}
        if self.spec.mode == "stream":
            return self._stream().init_state(height, width, **kw)
        return self._offline().init_state(height, width, **kw)

    def _offline(self) -> OfflineDepth:
        return OfflineDepth(self._run_window, metric=self.model.metric)

    def _stream(self) -> StreamDepth:
        return StreamDepth(self._run_step)

    def _emit(self, state: DepthState, depth: torch.Tensor, height: int, width: int) -> FrameBatch:
        """The next `len(depth)` held frames with their depth."""
        n = int(depth.shape[0])
        if n == 0:
            return FrameBatch.empty(height, width).with_layers(depth=torch.empty(0, height, width))
        parts = []
        while n:
            head = state.held[0]
            if len(head) <= n:
                parts.append(state.held.pop(0))
                n -= len(head)
            else:
                parts.append(head.slice(0, n))
                state.held[0] = head.slice(n)
                n = 0
        frames = FrameBatch.concat(parts)
        state.frames_out += len(frames)
        return frames.with_layers(depth=depth.to("cpu", torch.float32))

    def _run_window(self, x: torch.Tensor, info: WindowInfo) -> torch.Tensor:
        """One offline window, autocast when configured, re-run in fp32 if not finite."""
        with torch.no_grad():
            if self.amp_dtype is not None:
                with autocast(self.device, self.amp_dtype):
                    out = self.model(x).float()
                if bool(torch.isfinite(out).all()):
                    return out
                self._record_fallback(info.index, info.first_frame, info.last_frame)
            return self.model(x).float()

    def _run_step(self, x: torch.Tensor, cache: StreamCache | None, frame_index: int
                  ) -> tuple[torch.Tensor, StreamCache]:
        """One streaming step; the cache is not modified, so a failed step re-runs cleanly."""
        with torch.no_grad():
            if self.amp_dtype is not None:
                with autocast(self.device, self.amp_dtype):
                    out, new = self.model.stream_step(x, cache)
                out = out.float()
                if bool(torch.isfinite(out).all()):
                    return out, new
                self._record_fallback(frame_index, frame_index, frame_index)
            out, new = self.model.stream_step(x, cache)
            return out.float(), new

    def _record_fallback(self, window: int, first: int, last: int) -> None:
        dtype = precision_name(self.amp_dtype)
        self.report.fell_back(Fallback(self.name, first, last, dtype,
                                       f"non-finite output in {dtype}", window=window))
