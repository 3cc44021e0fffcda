"""Window pattern and streaming blend of the refiner (shared by training, evaluation and the stage).

Windows of N frames start every N - overlap frames (training: N=12, stride 6; the shipped v1
runs N=32, stride 24, see `vdp.models.refiner.config.with_windows`). Window ``s`` is scanned as
``[context keyframes] + [frames s .. s+N-1]``, where the context keyframes are the frames at
positions `keyframes` of the N frames before the window, i.e. frames ``s-12, s-8, s-4``
(clamped to frame 0 at the start of a stream, so the first window sees its first frame three
times). At the end of a stream, a window that runs past the last frame
repeats the last frame. Each window's log residual is blended into its frames with weight
``w = (1 - |2 pos - 1|)^2``, ``pos = (i + 0.5) / N``, normalised over the windows covering a
frame. A frame is final once the last window that covers it has run, so the stream emits
frames as soon as they are final, holds at most about 2N teacher frames, and its output does
not depend on how the input was split into batches.

Do-no-harm frame-shift limit (optional, ``max_frame_shift``): a frame's blended residual is
shifted as a whole so that its median lies within ``±max_frame_shift`` (log depth), i.e. the
refiner may move no frame's median depth by more than about that share of the teacher's. The
windows keep their geometric mean (scale lock), but inside a window they pull a frame whose
scale the teacher got right toward its neighbours; the limit bounds that global part of the
change per frame and keeps the local one. It needs the frame alone, so it does not change the
stream's latency or its independence of batching.

Working size (optional, ``max_pixels``): frames larger than that are shrunk once, when pushed
(log depth and RGB by area mean, to `work_size`), the windows run and blend at that size, and
each emitted frame's residual is upsampled bilinearly and clamped to its full-resolution
pixels' bound ``log(1 + alpha + beta / D)``, so ``|dD| <= alpha * D + beta`` holds at every
pixel. The depth layer comes at the video's resolution; the teacher has no detail finer than
its own working size, and the refiner's cost then no longer grows with the video's pixels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from vdp.models.refiner.colour import unit_rgb
from vdp.models.refiner.config import RefinerConfig
from vdp.models.refiner.model import residual_bound

#: Default working size of the stage: Video Depth Anything's own for 16:9 video (518x924).
WORK_PIXELS = 518 * 924


def work_size(height: int, width: int, max_pixels: int = WORK_PIXELS) -> tuple[int, int]:
    """The size ``height x width`` frames are refined at (their own if small enough)."""
    if height * width <= max_pixels:
        return height, width
    s = math.sqrt(max_pixels / (height * width))
    return max(1, round(height * s)), max(1, round(width * s))


def shrink(depth: torch.Tensor, rgb: torch.Tensor | None, size: tuple[int, int]):
    """Depth ``[t, H, W]`` (area mean of log depth) and RGB ``[t, 3, H, W]`` (area mean, unit
    float, a frame at a time) at `size`."""
    small = torch.exp(F.interpolate(torch.log(depth.float().clamp_min(1e-6))[None], size=size,
                                    mode="area")[0])
    if rgb is None:
        return small, None
    frames = [F.interpolate(unit_rgb(f)[None], size=size, mode="area")[0] for f in rgb]
    return small, torch.stack(frames)


def blend_weights(config: RefinerConfig) -> torch.Tensor:
    """Blend weight of each window position, float32 ``[N]`` (all > 0)."""
    n = config.window_frames
    pos = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    return ((1 - (2 * pos - 1).abs()) ** 2).float()


def window_input_indices(start: int, last: int, config: RefinerConfig) -> list[int]:
    """Frame indices fed to the model for the window starting at `start`.

    Args:
        start: First frame of the window.
        last: Index of the last frame of the stream that exists (later ones repeat it).
        config: The window pattern.

    Returns:
        ``len(keyframes) + N`` indices: context keyframes, then the window's frames.
    """
    n = config.window_frames
    ctx = [min(max(0, start - n + k), last) for k in config.keyframes]
    return ctx + [min(start + i, last) for i in range(n)]


def key_mask(config: RefinerConfig) -> torch.Tensor:
    """Bool ``[K + N]``: True at the context keyframes."""
    k = config.context_frames
    return torch.arange(k + config.window_frames) < k


def limit_frame_shift(rho: torch.Tensor, limit: float) -> torch.Tensor:
    """Shift one frame's log residual ``[H, W]`` so its median lies within ``[-limit, limit]``."""
    if not limit >= 0:  # also refuses NaN
        raise ValueError(f"max_frame_shift must be >= 0, got {limit}")
    g = rho.flatten().median()
    return rho + (g.clamp(-limit, limit) - g)


#: Runs the model on one window: (teacher depth ``[K+N, H, W]``, window start, the same frames'
#: RGB ``[K+N, 3, H, W]`` uint8 or None) -> log residual ``[N, H, W]``.
WindowFn = Callable[[torch.Tensor, int, "torch.Tensor | None"], torch.Tensor]


@dataclass
class StreamState:
    """Carry of one stream between batches.

    Attributes:
        received: Frames pushed so far.
        emitted: Frames returned so far (all earlier frames are final and gone).
        next_start: Start of the next window to run.
        teacher: Teacher depth by frame index, for frames still needed.
        rgb: The video frames by index as the model gets them (at the working size when that
            is smaller), kept like `teacher` (empty for a depth-only stream).
        small: The teacher at the working size by index, when that is smaller than the frames.
        acc: Per pending frame, ``(sum of w * rho, sum of w)``.
    """

    received: int = 0
    emitted: int = 0
    next_start: int = 0
    teacher: dict[int, torch.Tensor] = field(default_factory=dict)
    rgb: dict[int, torch.Tensor] = field(default_factory=dict)
    small: dict[int, torch.Tensor] = field(default_factory=dict)
    acc: dict[int, tuple[torch.Tensor, float]] = field(default_factory=dict)


class WindowedStream:
    """Cuts a depth stream into the refiner's windows and blends the results.

    Args:
        config: Window pattern (from the checkpoint).
        run_window: Model call for one window (see `WindowFn`).
        max_frame_shift: Do-no-harm limit on each frame's median log residual (see module
            docstring); None: no limit.
        max_pixels: Working size limit (see module docstring); None: frames' own size.
    """

    def __init__(self, config: RefinerConfig, run_window: WindowFn, *,
                 max_frame_shift: float | None = None, max_pixels: int | None = None) -> None:
        if max_frame_shift is not None and not max_frame_shift >= 0:
            raise ValueError(f"max_frame_shift must be >= 0, got {max_frame_shift}")
        self.config = config
        self.run_window = run_window
        self.max_frame_shift = max_frame_shift
        self.max_pixels = max_pixels
        self.weights = blend_weights(config).tolist()

    def push(self, state: StreamState, depth: torch.Tensor,
             rgb: torch.Tensor | None = None) -> tuple[torch.Tensor, StreamState]:
        """Add frames ``[t, H, W]`` (positive depth) and, for an RGB refiner, their RGB
        ``[t, 3, H, W]``; return the frames now final, refined."""
        if (rgb is None) != (not state.rgb) and state.received:
            raise ValueError("a refiner stream gets RGB with every batch or with none")
        if rgb is not None and (rgb.ndim != 4 or rgb.shape[0] != depth.shape[0]
                                or tuple(rgb.shape[2:]) != tuple(depth.shape[1:])):
            raise ValueError(f"RGB {list(rgb.shape)} does not match depth {list(depth.shape)}")
        size = tuple(depth.shape[1:]) if self.max_pixels is None else \
            work_size(*depth.shape[1:], self.max_pixels)
        small = None
        if size != tuple(depth.shape[1:]):
            small, rgb = shrink(depth, rgb, size)
        for i in range(depth.shape[0]):
            state.teacher[state.received] = depth[i]
            if rgb is not None:
                state.rgb[state.received] = rgb[i]
            if small is not None:
                state.small[state.received] = small[i]
            state.received += 1
        n = self.config.window_frames
        while state.next_start + n <= state.received:
            self._run(state, last=state.received - 1)
        return self._emit(state, state.next_start), state

    def flush(self, state: StreamState) -> torch.Tensor:
        """Run the remaining windows (repeating the last frame) and return every pending frame."""
        while state.next_start < state.received:
            self._run(state, last=state.received - 1)
        return self._emit(state, state.received)

    def _run(self, state: StreamState, last: int) -> None:
        s = state.next_start
        idx = window_input_indices(s, last, self.config)
        frames = state.small if state.small else state.teacher
        rgb = torch.stack([state.rgb[i] for i in idx]) if state.rgb else None
        rho = self.run_window(torch.stack([frames[i] for i in idx]), s, rgb)
        for i in range(self.config.window_frames):
            f = s + i
            if f > last:
                break
            w = self.weights[i]
            num, den = state.acc.get(f, (torch.zeros_like(rho[i]), 0.0))
            state.acc[f] = (num + w * rho[i], den + w)
        state.next_start = s + self.config.stride_frames
        keep_from = state.next_start - self.config.window_frames
        _forget(state, keep_from)

    def _full_size(self, rho: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """A working-size residual at the teacher's size, within each pixel's bound."""
        up = F.interpolate(rho[None, None], size=tuple(teacher.shape), mode="bilinear",
                           align_corners=False)[0, 0]
        bound = residual_bound(self.config, teacher.float())
        return torch.minimum(torch.maximum(up, -bound), bound)

    def _emit(self, state: StreamState, until: int) -> torch.Tensor:
        """Refined depth of frames ``emitted .. until-1`` (all final)."""
        out = []
        for f in range(state.emitted, min(until, state.received)):
            num, den = state.acc.pop(f)
            rho = num / den
            if tuple(rho.shape) != tuple(state.teacher[f].shape):
                rho = self._full_size(rho, state.teacher[f])
            if self.max_frame_shift is not None:
                rho = limit_frame_shift(rho, self.max_frame_shift)
            out.append(state.teacher[f] * torch.exp(rho))
        state.emitted = max(state.emitted, min(until, state.received))
        keep_from = state.next_start - self.config.window_frames
        _forget(state, keep_from)
        if not out:
            ref = next(iter(state.teacher.values()), None)
            shape = tuple(ref.shape) if ref is not None else (0, 0)
            return torch.empty(0, *shape)
        return torch.stack(out)


def _forget(state: StreamState, keep_from: int) -> None:
    """Drop the frames no window will read again and that are already emitted."""
    for f in [f for f in state.teacher if f < keep_from and f < state.emitted]:
        del state.teacher[f]
        state.rgb.pop(f, None)
        state.small.pop(f, None)


def refine_sequence(config: RefinerConfig, run_window: WindowFn, depth: torch.Tensor, *,
                    rgb: torch.Tensor | None = None, max_frame_shift: float | None = None,
                    max_pixels: int | None = None) -> torch.Tensor:
    """Refine a whole sequence ``[T, H, W]`` (with its RGB ``[T, 3, H, W]`` for an RGB
    refiner) in one call (same result as any batching)."""
    stream = WindowedStream(config, run_window, max_frame_shift=max_frame_shift,
                            max_pixels=max_pixels)
    state = StreamState()
    head, state = stream.push(state, depth, rgb)
    return torch.cat([head, stream.flush(state)])
