"""Per-frame pixel maths for writers, in numpy on one core, into reused scratch buffers.

Writers run next to model stages: torch's elementwise ops fan out over OpenMP threads whose
start-up and spin-waiting cost several times the arithmetic on a busy machine (a 1080p
float pass: ~5 ms of CPU with 2 threads against ~0.4 ms on one), and fresh large buffers cost
more in page faults than the maths. So: numpy (single-threaded), one frame at a time, scratch
buffers kept between batches.
"""
from __future__ import annotations

import numpy as np
import torch


class Scratch:
    """Float32 buffers reused between calls, one per (name, shape)."""

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._buffers[name] = np.empty(shape, dtype)
        return buf


#: Pixels an output converts in one go: a batch of 1080p frames in one piece, 4K in pairs, 8K
#: frame by frame, so a writer's scratch does not grow with the source's resolution.
GROUP_PIXELS = 16 << 20


def frame_groups(frames: int, height: int, width: int) -> list[tuple[int, int]]:
    """``(start, stop)`` ranges covering `frames` frames, each at most `GROUP_PIXELS` pixels
    (and at least one frame)."""
    step = max(1, GROUP_PIXELS // max(1, height * width))
    return [(i, min(frames, i + step)) for i in range(0, frames, step)]


def as_numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """A CPU numpy view of `x` (no copy for a contiguous CPU tensor)."""
    if isinstance(x, np.ndarray):
        return x
    return x.detach().cpu().numpy()


def float_to_u8(x: torch.Tensor | np.ndarray, scratch: Scratch) -> np.ndarray:
    """``round(clip(x, 0, 1) * 255)`` as uint8, same shape (NaN maps to 0)."""
    src = as_numpy(x)
    out = np.empty(src.shape, np.uint8)
    for i in range(src.shape[0]):
        buf = scratch.get("u8", src.shape[1:])
        np.multiply(src[i], np.float32(255), out=buf)
        np.clip(buf, 0, 255, out=buf)
        np.rint(buf, out=buf)
        if np.isnan(buf.max()):  # NaN propagates into max: only then pay for a replace
            np.nan_to_num(buf, copy=False, nan=0.0)
        np.copyto(out[i], buf, casting="unsafe")
    return out
