"""Small deterministic stages that exercise the engine (test-only, not vdp features)."""
from __future__ import annotations

import time
from typing import Any

import torch

from vdp.stages.base import Stage
from vdp.types import FrameBatch, VideoInfo


class GrayEmaStage(Stage):
    """Adds layer ``depth``: an exponential moving average of frame brightness (carried state)."""

    name = "gray_ema"
    produces = ("depth",)

    def __init__(self, decay: float = 0.5) -> None:
        super().__init__()
        self.decay = decay

    def init_state(self, info: VideoInfo) -> Any:
        return None

    def process(self, batch: FrameBatch, state: Any) -> tuple[FrameBatch, Any]:
        gray = batch.frames.float().mean(dim=1) / 255.0
        out = torch.empty_like(gray)
        for t in range(len(batch)):
            state = gray[t] if state is None else self.decay * state + (1 - self.decay) * gray[t]
            out[t] = state
        return batch.with_layers(depth=out), state


class WindowStage(Stage):
    """Buffers frames and emits them in windows of `window` frames (the rest at flush).

    Adds layer ``window_mean``: each frame's brightness minus its window's mean brightness.
    """

    name = "window"

    def __init__(self, window: int = 5) -> None:
        super().__init__()
        self.window = window

    def init_state(self, info: VideoInfo) -> Any:
        return []

    def process(self, batch: FrameBatch, state: list[FrameBatch]) -> tuple[FrameBatch, Any]:
        state = state + [batch]
        buffered = FrameBatch.concat(state)
        n_full = (len(buffered) // self.window) * self.window
        if n_full == 0:
            return FrameBatch.empty(batch.height, batch.width), [buffered]
        return self._emit(buffered.slice(0, n_full)), [buffered.slice(n_full)]

    def flush(self, state: list[FrameBatch]) -> FrameBatch | None:
        rest = FrameBatch.concat(state) if state else None
        return self._emit(rest) if rest is not None and len(rest) else None

    def _emit(self, b: FrameBatch) -> FrameBatch:
        means = []
        for start in range(0, len(b), self.window):
            chunk = b.frames[start:start + self.window].float().mean(dim=(1, 2, 3))
            means.append(chunk - chunk.mean())
        return b.with_layers(window_mean=torch.cat(means))


class SlowStage(Stage):
    """Sleeps `seconds` per batch and passes frames through."""

    name = "slow"

    def __init__(self, seconds: float = 0.05) -> None:
        super().__init__()
        self.seconds = seconds

    def init_state(self, info: VideoInfo) -> Any:
        return 0

    def process(self, batch: FrameBatch, state: int) -> tuple[FrameBatch, int]:
        time.sleep(self.seconds)
        return batch, state + len(batch)


class FailingStage(Stage):
    """Raises on the frame `fail_at`."""

    name = "failing"

    def __init__(self, fail_at: int = 10) -> None:
        super().__init__()
        self.fail_at = fail_at

    def init_state(self, info: VideoInfo) -> Any:
        return None

    def process(self, batch: FrameBatch, state: Any) -> tuple[FrameBatch, Any]:
        if int(batch.indices[-1]) >= self.fail_at:
            raise RuntimeError("synthetic failure for the test")
        return batch, state
