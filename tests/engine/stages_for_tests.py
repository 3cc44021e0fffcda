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


class ChunkAffineStage(Stage):
    """A depth stage whose chunks disagree by a random scale/shift, plus a recurrent layer.

    Adds ``depth``: a smooth per-pixel function of the frame times ``s`` plus ``t``, where
    ``(s, t)`` is drawn from the first frame index the stream sees (``(1, 0)`` for a stream that
    starts at frame 0, so a sequential pass is the reference); and ``alpha``: a per-pixel
    exponential moving average of brightness with `decay` (state that needs warming up).
    Optionally sleeps `seconds` per batch.
    """

    name = "depth"
    produces = ("depth", "alpha")

    def __init__(self, decay: float = 0.3, seconds: float = 0.0) -> None:
        super().__init__()
        self.decay = decay
        self.seconds = seconds

    def init_state(self, info: VideoInfo) -> Any:
        return {"affine": None, "ema": None}

    def process(self, batch: FrameBatch, state: Any) -> tuple[FrameBatch, Any]:
        if self.seconds:
            time.sleep(self.seconds)
        if state["affine"] is None:
            first = int(batch.indices[0])
            gen = torch.Generator().manual_seed(first)
            s, t = (1.0, 0.0) if first == 0 else (0.3 + 2.0 * float(torch.rand(1, generator=gen)),
                                                  -1.0 + 2.0 * float(torch.rand(1, generator=gen)))
            state["affine"] = (s, t)
        s, t = state["affine"]
        gray = batch.frames.float().mean(dim=1) / 255.0
        base = 0.2 + gray + 0.5 * torch.sin(3.0 * gray)
        alpha = torch.empty_like(gray)
        ema = state["ema"]
        for i in range(len(batch)):
            ema = gray[i] if ema is None else self.decay * ema + (1 - self.decay) * gray[i]
            alpha[i] = ema
        state["ema"] = ema
        return batch.with_layers(depth=base * s + t, alpha=alpha), state


class ReplicaSpeedStage(Stage):
    """Passes frames through (adds ``depth`` = brightness); sleeps `seconds` per batch only in
    the actor whose Ray name ends with `slow_suffix` (a slow GPU among fast ones)."""

    name = "depth"
    produces = ("depth",)

    def __init__(self, slow_suffix: str = ":0", seconds: float = 0.2) -> None:
        super().__init__()
        self.slow_suffix = slow_suffix
        self.seconds = seconds
        self.slow = False

    def setup(self, device: Any) -> None:
        super().setup(device)
        import ray

        name = ray.get_runtime_context().get_actor_name() if ray.is_initialized() else None
        self.slow = bool(name) and name.endswith(self.slow_suffix)

    def init_state(self, info: VideoInfo) -> Any:
        return None

    def process(self, batch: FrameBatch, state: Any) -> tuple[FrameBatch, Any]:
        if self.slow:
            time.sleep(self.seconds)
        return batch.with_layers(depth=batch.frames.float().mean(dim=1) / 255.0), state


class CountingStage(Stage):
    """Passes frames through; at each flush reports how many frames its stream saw (a warning),
    so tests can check which segments the chain flushed and that every report arrives."""

    name = "counting"

    def init_state(self, info: VideoInfo) -> Any:
        return 0

    def process(self, batch: FrameBatch, state: int) -> tuple[FrameBatch, int]:
        return batch, state + len(batch)

    def flush(self, state: int) -> FrameBatch | None:
        self.report.warnings.append(f"flushed after {state} frames")
        return None


class BatchSizeStage(Stage):
    """Gray depth; at each flush reports the sizes of the batches it was given (a warning)."""

    name = "batch_sizes"

    def init_state(self, info: VideoInfo) -> Any:
        return []

    def process(self, batch: FrameBatch, state: list) -> tuple[FrameBatch, list]:
        return batch.with_layers(depth=batch.frames[:, 1].float()), state + [len(batch)]

    def flush(self, state: list) -> FrameBatch | None:
        self.report.warnings.append(f"batches of {state} frames")
        return None
