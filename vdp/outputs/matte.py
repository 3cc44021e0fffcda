"""Matte outputs: alpha MP4, VP9 WebM with alpha, RGBA PNGs, composite over a colour."""
from __future__ import annotations

from pathlib import Path

import torch

from vdp.io import Mp4Writer, PngRgbaSequenceWriter, WebmAlphaWriter
from vdp.outputs.base import WriterOutput
from vdp.spec import OutputSpec
from vdp.types import FrameBatch, VideoInfo


def _u8(x: torch.Tensor) -> torch.Tensor:
    return x.float().mul(255).round_().clamp_(0, 255).to(torch.uint8)


class _MatteOutput(WriterOutput):
    def __init__(self, spec: OutputSpec, path: Path, info: VideoInfo, **_: object) -> None:
        super().__init__(spec, path, info)

    def alpha(self, batch: FrameBatch) -> torch.Tensor:
        """The matte as uint8 [T,H,W] (0 transparent .. 255 opaque)."""
        a = batch.layers["alpha"]
        return a if a.dtype == torch.uint8 else _u8(a)

    def foreground(self, batch: FrameBatch) -> torch.Tensor:
        """RGB uint8 [T,3,H,W]: the model's foreground estimate, or the source frames."""
        fgr = batch.layers.get("foreground")
        if fgr is None:
            return batch.frames
        return fgr if fgr.dtype == torch.uint8 else _u8(fgr)


class AlphaMp4Output(_MatteOutput):
    """The alpha matte as a grayscale H.264 MP4."""

    def write(self, batch: FrameBatch) -> None:
        if self.writer is None:
            self.writer = Mp4Writer(self.path, fps=self.info.fps, crf=self.spec.crf, preset=self.spec.preset)
        self.writer.write(self.alpha(batch).unsqueeze(1).expand(-1, 3, -1, -1))


class ForegroundWebmOutput(_MatteOutput):
    """Foreground with alpha as VP9 WebM (yuva420p): plays transparent in browsers."""

    def write(self, batch: FrameBatch) -> None:
        if self.writer is None:
            self.writer = WebmAlphaWriter(self.path, fps=self.info.fps)
        self.writer.write(self.foreground(batch), self.alpha(batch))


class RgbaPngOutput(_MatteOutput):
    """A folder of 8-bit RGBA PNGs (exact alpha)."""

    def write(self, batch: FrameBatch) -> None:
        if self.writer is None:
            self.writer = PngRgbaSequenceWriter(self.path, start_index=int(batch.indices[0]))
        self.writer.write(self.foreground(batch), self.alpha(batch))


class CompositeMp4Output(_MatteOutput):
    """Foreground composited over a solid colour (green screen by default), with source audio."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        h = self.spec.background.lstrip("#")
        self.bg = torch.tensor([int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)]).view(1, 3, 1, 1)

    def write(self, batch: FrameBatch) -> None:
        if self.writer is None:
            self.writer = Mp4Writer(self.path, fps=self.info.fps, crf=self.spec.crf, preset=self.spec.preset,
                                    audio_from=self.info.path if self.info.has_audio else None)
        a = self.alpha(batch).float().div_(255).unsqueeze(1)
        fgr = self.foreground(batch).float() / 255
        self.writer.write(_u8(fgr * a + self.bg * (1 - a)))
