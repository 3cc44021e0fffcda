"""A stage call on the CPU reuses the memory it frees (up to 4K frames), whichever runner calls it."""
from __future__ import annotations

from typing import Any

import torch

import vdp.host_memory as host_memory
from vdp.engine.step import flush_step, process_step
from vdp.stages.base import Stage
from vdp.types import FrameBatch, VideoInfo


class ScopeProbe(Stage):
    """Notes, per call, whether it ran inside `reuse_freed_memory` blocks."""

    name = "scope_probe"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, int]] = []

    def init_state(self, info: VideoInfo) -> Any:
        return None

    def process(self, batch: FrameBatch, state: Any) -> tuple[FrameBatch, Any]:
        self.seen.append(("process", host_memory._reusing))
        return batch, state

    def flush(self, state: Any) -> FrameBatch | None:
        self.seen.append(("flush", host_memory._reusing))
        return None


def frames(h: int, w: int) -> FrameBatch:
    idx = torch.arange(1)
    pixels = torch.zeros(1, 3, 1, 1, dtype=torch.uint8).expand(1, 3, h, w)  # no memory behind it
    return FrameBatch(pixels, idx, idx.double())


def test_cpu_calls_reuse_freed_memory_up_to_4k_frames() -> None:
    stage = ScopeProbe()
    process_step(stage, "probe", frames(2160, 3840), None)
    flush_step(stage, "probe", None)
    process_step(stage, "probe", frames(4320, 7680), None)  # 8K: freed blocks go straight back
    flush_step(stage, "probe", None)
    assert stage.seen == [("process", 1), ("flush", 1), ("process", 0), ("flush", 0)]
    assert host_memory._reusing == 0


def test_calls_on_a_gpu_keep_the_usual_allocation() -> None:
    stage = ScopeProbe()
    stage.device = torch.device("meta")  # any device but the CPU
    process_step(stage, "probe", frames(720, 1280), None)
    assert stage.seen == [("process", 0)]
