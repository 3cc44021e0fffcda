"""A stage and an output kind that are not part of vdp, added the documented way: this one
module plus one catalog entry each (`STAGE`, `OUTPUT`), registered by `tests/test_catalog.py`.

``brightness`` adds layer ``brightness`` float32 ``[T]``: each frame's mean RGB value in
[0, 1] times ``gain``. ``brightness_csv`` writes it as ``frame,brightness`` lines.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from vdp.catalog import OutputEntry, StageEntry
from vdp.outputs.base import Output
from vdp.spec import OutputSpec
from vdp.stages.base import Stage
from vdp.types import FrameBatch, VideoInfo


class BrightnessSpec(BaseModel):
    """Options of the ``brightness`` stage."""

    model_config = ConfigDict(extra="forbid")

    gain: float = Field(1.0, gt=0, le=10)


class BrightnessStage(Stage):
    """Per-frame mean brightness; stateless, so it emits every batch at once."""

    name = "brightness"

    def __init__(self, spec: BrightnessSpec, *, precision: str = "auto") -> None:
        super().__init__()
        self.spec = spec

    def init_state(self, info: VideoInfo) -> Any:
        return None

    def process(self, batch: FrameBatch, state: Any) -> tuple[FrameBatch, Any]:
        value = batch.frames.float().mean(dim=(1, 2, 3)).div(255).mul(self.spec.gain)
        return batch.with_layers(brightness=value), state


class BrightnessCsvOutput(Output):
    """``frame,brightness`` per line, published on `close` by a rename."""

    def __init__(self, spec: OutputSpec, path: Path, info: VideoInfo, **_: object) -> None:
        super().__init__(spec, path, info)
        self.tmp = path.with_name(f".{path.name}.tmp")
        self.lines: list[str] = []

    def write(self, batch: FrameBatch) -> None:
        for i, v in zip(batch.indices.tolist(), batch.layers["brightness"].tolist()):
            self.lines.append(f"{i},{v:.6f}\n")

    def close(self) -> Path:
        self.tmp.write_text("frame,brightness\n" + "".join(self.lines))
        self.tmp.replace(self.path)
        return self.path

    def abort(self) -> None:
        self.tmp.unlink(missing_ok=True)


def expected_brightness(frames: torch.Tensor, gain: float) -> torch.Tensor:
    """What the stage computes for RGB uint8 frames ``[T,3,H,W]``."""
    return frames.float().mean(dim=(1, 2, 3)).div(255).mul(gain)


STAGE = StageEntry("brightness", BrightnessStage, BrightnessSpec, produces=("brightness",),
                   requires=("rgb",), cost=0.1)
OUTPUT = OutputEntry("brightness_csv", BrightnessCsvOutput, ("brightness",), "brightness.csv",
                     "text/csv", description="per-frame mean brightness")
