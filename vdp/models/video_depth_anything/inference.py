"""The official offline (windowed) and streaming procedures, as incremental state machines.

Both consume frames in order, in batches of any size, and return depth for the frames that are
final; memory is bounded by one window whatever the video length, and by the network size
whatever the resolution: frames are preprocessed as they arrive (the window holds network
inputs, never full-resolution frames), alignment and blending run at the transform's
``work_size`` (the ``max_res``-limited size, where the official tool runs them too) and depth is
brought to frame size one frame at a time as it is returned. Feeding a whole clip and
finishing gives exactly the official ``infer_video_depth`` / ``infer_video_depth_one`` results.

The network call is injected (`WindowRunner`, `StepRunner`) so callers choose precision and
fallbacks; `default_window_runner` / `default_step_runner` run plain float32.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, NamedTuple

import torch

from vdp.models.video_depth_anything.align import apply_scale_shift, crossfade, fit_scale_shift
from vdp.models.video_depth_anything.configs import WINDOWING, Windowing
from vdp.models.video_depth_anything.transform import FrameTransform, resize_depth
from vdp.models.video_depth_anything.video_depth import StreamCache, VideoDepthAnything


@dataclass(frozen=True)
class WindowInfo:
    """Which window a network call is for.

    Attributes:
        index: Window number k (starts at frame ``k * stride``).
        first_frame: First video frame of the window.
        last_frame: Last real (not padding) video frame of the window.
    """

    index: int
    first_frame: int
    last_frame: int


@dataclass(frozen=True)
class WindowRecord:
    """What happened in one window (for reports and parity checks).

    Attributes:
        info: The window.
        net_input_shape: Shape of the network input, ``[1, T, 3, h, w]``.
        scale: Alignment scale (1 for window 0 and metric models).
        shift: Alignment shift (0 for window 0 and metric models).
    """

    info: WindowInfo
    net_input_shape: tuple[int, ...]
    scale: float
    shift: float


WindowRunner = Callable[[torch.Tensor, WindowInfo], torch.Tensor]
"""``run(x [1,T,3,h,w], info) -> depth [1,T,h,w]``: one network pass over a window."""

StepRunner = Callable[[torch.Tensor, "StreamCache | None", int], "tuple[torch.Tensor, StreamCache]"]
"""``step(x [1,3,h,w], cache, frame_index) -> (depth [1,h,w], cache)``: one streaming step
(`frame_index` is the source index, for reports)."""


def default_window_runner(model: VideoDepthAnything) -> WindowRunner:
    """Float32 forward without gradients."""
    def run(x: torch.Tensor, info: WindowInfo) -> torch.Tensor:
        with torch.no_grad():
            return model(x)
    return run


def default_step_runner(model: VideoDepthAnything) -> StepRunner:
    """Float32 streaming step without gradients."""
    def step(x: torch.Tensor, cache: StreamCache | None, frame_index: int
             ) -> tuple[torch.Tensor, StreamCache]:
        with torch.no_grad():
            return model.stream_step(x, cache)
    return step


@dataclass
class OfflineState:
    """Carry of the offline procedure between batches (bounded by one window).

    Attributes:
        transform: Preprocessing for this stream's frame size.
        first_index: Source index of the stream's first frame (for `WindowInfo`).
        next_window: Index k of the next window to run.
        frames_in: Frames received so far.
        frames: Window buffer of network inputs, float32 [infer_len,3,h,w]: the next window's
            new slots (preprocessed as they arrive).
        filled: How many of `frames` are filled.
        key_inputs: Network inputs for the next window's slots 0 and 1 ([2,3,h,w]; after window 0).
        reference: Alignment reference [2,H',W'] (work size): window 0's raw frame 0 and the last
            aligned slot 12.
        tail: Aligned depth of the blend zone [interp_len,H',W'] (work size), not final yet.
        finished: Whether `finish` ran.
    """

    transform: FrameTransform
    first_index: int = 0
    next_window: int = 0
    frames_in: int = 0
    frames: torch.Tensor | None = None
    filled: int = 0
    key_inputs: torch.Tensor | None = None
    reference: torch.Tensor | None = None
    tail: torch.Tensor | None = None
    finished: bool = False


class Step(NamedTuple):
    """Result of feeding frames: depth of the frames now final, the new state, windows run."""

    depth: torch.Tensor
    state: OfflineState
    windows: list[WindowRecord]


class OfflineDepth:
    """The official long-video procedure (``infer_video_depth``), fed incrementally.

    Windows of 32 frames start every 22 frames. A window's first 10 slots are replaced by the
    previous window's inputs at the keyframe slots (so slot 0 is always frame 0 and slot 1 the
    previous window's slot 12). Windows after the first are aligned by a least-squares
    scale/shift of slots 0-1 to a reference (skipped for metric models), cross-faded over 8
    frames with the previous window and clamped at 0. The clip end is padded by repeating the
    last frame. A frame is final (returned) once no later window can change it.

    Args:
        run: The network call (see `WindowRunner`).
        metric: Metric model: no scale/shift alignment.
        windowing: The procedure's constants.
    """

    def __init__(self, run: WindowRunner, *, metric: bool = False, windowing: Windowing = WINDOWING) -> None:
        self.run = run
        self.metric = metric
        self.w = windowing

    def init_state(self, height: int, width: int, *, input_size: int = 518,
                   max_res: int | None = None, first_index: int = 0) -> OfflineState:
        """A new stream of `height` x `width` frames whose first frame has index `first_index`."""
        return OfflineState(FrameTransform.create(height, width, input_size=input_size, max_res=max_res),
                            first_index)

    def _slots_needed(self, k: int) -> int:
        return self.w.infer_len if k == 0 else self.w.infer_len - self.w.align_len

    def push(self, state: OfflineState, frames: torch.Tensor) -> Step:
        """Feed the next frames.

        Args:
            state: From `init_state` or the previous `push`.
            frames: RGB uint8 [T,3,H,W] on the compute device.

        Returns:
            `Step` with the depth [n,H,W] float32 of the frames that became final (in order).
        """
        if state.finished:
            raise ValueError("push after finish: start a new state for a new stream")
        out: list[torch.Tensor] = []
        records: list[WindowRecord] = []
        if state.frames is None and len(frames):
            state.frames = torch.empty((self.w.infer_len, 3, *state.transform.net_size),
                                       dtype=torch.float32, device=frames.device)
        i = 0
        while i < len(frames):
            need = self._slots_needed(state.next_window)
            take = min(need - state.filled, len(frames) - i)
            state.frames[state.filled:state.filled + take] = state.transform(frames[i:i + take])
            state.filled += take
            state.frames_in += take
            i += take
            if state.filled == need:
                depth, record = self._run_window(state, state.frames_in)
                out.append(depth)
                records.append(record)
        return Step(self._cat(state, out), state, records)

    def finish(self, state: OfflineState) -> Step:
        """End of stream: run the remaining windows on padded frames and return the rest."""
        if state.finished:
            raise ValueError("finish called twice on the same stream state")
        n = state.frames_in
        out: list[torch.Tensor] = []
        records: list[WindowRecord] = []
        emitted = self._emitted_before(state.next_window)
        while self._window_matters(state.next_window, n):
            need = self._slots_needed(state.next_window)
            state.frames[state.filled:need] = state.frames[state.filled - 1]
            state.filled = need
            depth, record = self._run_window(state, n)
            out.append(depth)
            records.append(record)
        if state.tail is not None:
            out.append(state.tail)
        depth = self._cat(state, out, keep=max(0, n - emitted))
        state.frames, state.tail, state.key_inputs, state.reference = None, None, None, None
        state.filled = 0
        state.finished = True
        return Step(depth, state, records)

    def _window_matters(self, k: int, n: int) -> bool:
        """Whether window `k` changes any of `n` frames.

        The official loop runs every window starting before frame n, but window k >= 1 only
        decides frames from ``k * stride + align_len`` on; skipping it otherwise is exact.
        """
        return n > k * self.w.stride + (self.w.align_len if k else 0)

    def _emitted_before(self, k: int) -> int:
        """Frames returned before window `k` runs."""
        return 0 if k == 0 else self.w.infer_len - self.w.interp_len + (k - 1) * self.w.stride

    def _cat(self, state: OfflineState, parts: list[torch.Tensor], keep: int | None = None
             ) -> torch.Tensor:
        """The first `keep` (default: all) frames of `parts` (work size), at frame size."""
        if parts:
            work = torch.cat(parts)[:keep]
            return resize_depth(work, state.transform.frame_size)
        h, w = state.transform.frame_size
        device = state.frames.device if state.frames is not None else None
        return torch.empty(0, h, w, dtype=torch.float32, device=device)

    def _run_window(self, state: OfflineState, frames_in: int) -> tuple[torch.Tensor, WindowRecord]:
        """Run window k on the pending frames; update the state.

        Returns:
            (depth [n,H,W] of the frames this window made final (the blend zone stays in
            ``state.tail``), the record).
        """
        w, k = self.w, state.next_window
        start = k * w.stride
        info = WindowInfo(k, state.first_index + start,
                          state.first_index + min(start + w.infer_len, frames_in) - 1)
        x = state.frames[:state.filled]
        if state.key_inputs is not None:
            x = torch.cat([state.key_inputs, x])
        raw = self.run(x.unsqueeze(0), info)[0]
        raw = resize_depth(raw, state.transform.work_size)
        state.key_inputs = x[list(w.keyframes[: w.align_len])].clone()
        scale, shift = 1.0, 0.0
        if k == 0:
            aligned = raw
            state.reference = raw[list(w.keyframes[: w.align_len])].clone()
            decided = aligned
        else:
            if not self.metric:
                scale, shift = fit_scale_shift(raw[: w.align_len], state.reference)
            blended = crossfade(state.tail, apply_scale_shift(raw[w.align_len:w.overlap], scale, shift))
            aligned = apply_scale_shift(raw[w.overlap:], scale, shift)
            kf = list(w.keyframes[1: w.align_len])
            state.reference = torch.cat([state.reference[:1], aligned[[i - w.overlap for i in kf]]])
            decided = torch.cat([blended, aligned])
        state.tail = decided[-w.interp_len:].clone()
        decided = decided[: -w.interp_len]
        keep = w.infer_len - w.stride - w.align_len  # slots 24..31 are the next window's slots 2..9
        state.frames[:keep] = state.frames[state.filled - keep:state.filled].clone()
        state.filled = keep
        state.next_window = k + 1
        return decided, WindowRecord(info, tuple(x.unsqueeze(0).shape), scale, shift)


def infer_video_depth(model: VideoDepthAnything, frames: torch.Tensor, *, input_size: int = 518,
                      max_res: int | None = None, run: WindowRunner | None = None
                      ) -> tuple[torch.Tensor, list[WindowRecord]]:
    """The official offline procedure on a whole clip.

    Args:
        model: A loaded model (its ``metric`` flag switches the alignment off).
        frames: RGB uint8 [N,3,H,W] on the model's device.
        input_size: Shorter side fed to the network (before snapping to multiples of 14).
        max_res: Longer-side limit of the frames fed to the preprocessing (None: no limit).
        run: Network call; default float32 without gradients.

    Returns:
        (depth float32 [N,H,W], one record per window).
    """
    proc = OfflineDepth(run or default_window_runner(model), metric=model.metric)
    state = proc.init_state(frames.shape[-2], frames.shape[-1], input_size=input_size, max_res=max_res)
    first = proc.push(state, frames)
    last = proc.finish(first.state)
    return torch.cat([first.depth, last.depth]), first.windows + last.windows


@dataclass
class StreamState:
    """Carry of the streaming procedure: the transform, the first frame's source index and the
    model's temporal cache."""

    transform: FrameTransform
    first_index: int = 0
    cache: StreamCache | None = None


class StreamDepth:
    """The official streaming procedure (``infer_video_depth_one``): one frame at a time.

    No alignment or blending: each frame's depth is the network output at frame size.

    Args:
        step: The network call (see `StepRunner`).
    """

    def __init__(self, step: StepRunner) -> None:
        self.step = step

    def init_state(self, height: int, width: int, *, input_size: int = 518,
                   max_res: int | None = None, first_index: int = 0) -> StreamState:
        """A new stream of `height` x `width` frames whose first frame has index `first_index`."""
        return StreamState(FrameTransform.create(height, width, input_size=input_size, max_res=max_res),
                           first_index)

    def push(self, state: StreamState, frames: torch.Tensor) -> tuple[torch.Tensor, StreamState]:
        """Depth [T,H,W] float32 of `frames` (RGB uint8 [T,3,H,W]) and the new state."""
        out = []
        cache = state.cache
        inputs = state.transform(frames) if len(frames) else frames
        for x in inputs:
            index = state.first_index + (0 if cache is None else cache.frames_seen)
            depth, cache = self.step(x.unsqueeze(0), cache, index)
            out.append(resize_depth(depth, state.transform.frame_size))
        h, w = state.transform.frame_size
        depth = torch.cat(out) if out else torch.empty(0, h, w, dtype=torch.float32, device=frames.device)
        return depth, replace(state, cache=cache)
