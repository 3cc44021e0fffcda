"""Matte outputs: alpha MP4, VP9 WebM with alpha, RGBA PNGs, composite over a colour."""
from __future__ import annotations

from pathlib import Path

import torch

from vdp.io import CompositeMp4Writer, PngRgbaSequenceWriter
from vdp.outputs._pixels import Scratch, float_to_u8
from vdp.outputs.base import WriterOutput
from vdp.outputs.encoding import mp4_writer, webm_writer
from vdp.spec import OutputSpec
from vdp.types import FrameBatch, VideoInfo


def _u8(x: torch.Tensor, scratch: Scratch) -> torch.Tensor:
    return torch.from_numpy(float_to_u8(x.float(), scratch))


class _MatteOutput(WriterOutput):
    def __init__(self, spec: OutputSpec, path: Path, info: VideoInfo, **_: object) -> None:
        super().__init__(spec, path, info)
        self.scratch = Scratch()

    def alpha(self, batch: FrameBatch) -> torch.Tensor:
        """The matte as uint8 [T,H,W] (0 transparent .. 255 opaque)."""
        a = batch.layers["alpha"]
        return a if a.dtype == torch.uint8 else _u8(a, self.scratch)

    def foreground(self, batch: FrameBatch) -> torch.Tensor:
        """RGB uint8 [T,3,H,W]: the model's foreground estimate, or the source frames."""
        fgr = batch.layers.get("foreground")
        if fgr is None:
            return batch.frames
        return fgr if fgr.dtype == torch.uint8 else _u8(fgr, self.scratch)


#: Gray level -> limited-range luma (16..235): what the RGB gray converts to with any matrix.
_GRAY_TO_Y = torch.round(16 + torch.arange(256, dtype=torch.float64) * 219 / 255).to(torch.uint8)


class AlphaMp4Output(_MatteOutput):
    """The alpha matte as a grayscale H.264 MP4."""

    def write(self, batch: FrameBatch) -> None:
        if self.writer is None:
            self.writer = mp4_writer(self.spec, self.path, fps=self.info.fps)
        alpha = self.alpha(batch)
        t, h, w = alpha.shape
        if h % 2 or w % 2:
            self.writer.write(alpha.unsqueeze(1).expand(-1, 3, -1, -1))
            return
        # gray is luma alone: one table lookup, neutral chroma, no RGB frames or conversion
        y = torch.index_select(_GRAY_TO_Y, 0, alpha.cpu().reshape(-1).to(torch.int32)).view(t, h, w)
        neutral = torch.full((t, h // 2, w // 2), 128, dtype=torch.uint8)
        self.writer.write_yuv420(y, neutral, neutral)


class ForegroundWebmOutput(_MatteOutput):
    """Foreground with alpha as VP9 WebM (yuva420p): plays transparent in browsers."""

    def write(self, batch: FrameBatch) -> None:
        if self.writer is None:
            self.writer = webm_writer(self.spec, self.path, fps=self.info.fps)
        self.writer.write(self.foreground(batch), self.alpha(batch))


class RgbaPngOutput(_MatteOutput):
    """A folder of 8-bit RGBA PNGs (exact alpha)."""

    def write(self, batch: FrameBatch) -> None:
        if self.writer is None:
            self.writer = PngRgbaSequenceWriter(self.path, start_index=int(batch.indices[0]),
                                                level=self.spec.png_level)
        self.writer.write(self.foreground(batch), self.alpha(batch))


class CompositeMp4Output(_MatteOutput):
    """Foreground composited over a solid colour (green screen by default), with source audio;
    the blend is the encoder's (`vdp.io.writers.mp4.CompositeMp4Writer`)."""

    carries_audio = True  # the source's audio is muxed in

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        h = self.spec.background.lstrip("#")
        self.bg = tuple(int(h[i:i + 2], 16) for i in (0, 2, 4))

    def write(self, batch: FrameBatch) -> None:
        if self.writer is None:
            self.writer = mp4_writer(self.spec, self.path, fps=self.info.fps,
                                     writer=CompositeMp4Writer, background=self.bg,
                                     audio_from=self.info.path if self.info.has_audio else None,
                                     audio_stream=self.info.audio_stream, pixels_of=self.info)
        self.writer.write(self.foreground(batch), self.alpha(batch))
