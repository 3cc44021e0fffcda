"""Post-production matte outputs: ProRes 4444 with alpha, the foreground colour as its own video,
and 16-bit PNG alpha.

=====================  ===============================  ========================================
kind                   default name                     content
=====================  ===============================  ========================================
``prores4444_mov``     ``{stem}_ProRes4444_alpha.mov``  foreground RGB + alpha, PCM source audio
``foreground_mp4``     ``{stem}_foreground.mp4``        the foreground colour estimate (H.264)
``alpha_png16``        ``{stem}_alpha_png16/``          16-bit grayscale alpha, one PNG a frame
=====================  ===============================  ========================================

The matte stage hands over 8-bit alpha today, so 16-bit PNGs carry those values exactly
(``a16 = a8 * 257``); a float alpha layer is written at full 16-bit precision.
"""
from __future__ import annotations

import numpy as np
import torch

from vdp.io import Png16SequenceWriter
from vdp.io.writers.prores import ProresAlphaWriter
from vdp.outputs.encoding import mp4_writer
from vdp.outputs.matte import _MatteOutput
from vdp.types import FrameBatch


def alpha16(alpha: torch.Tensor) -> np.ndarray:
    """uint16 ``[T,H,W]`` alpha from uint8 (x257, exact) or float 0..1 (rounded)."""
    if alpha.dtype == torch.uint8:
        return alpha.cpu().numpy().astype(np.uint16) * 257
    return alpha.float().clamp(0, 1).mul(65535).round().cpu().numpy().astype(np.uint16)


class ProresAlphaOutput(_MatteOutput):
    """ProRes 4444 ``.mov``: foreground colour with alpha, for editing and compositing tools."""

    def write(self, batch: FrameBatch) -> None:
        if self.writer is None:
            self.writer = ProresAlphaWriter(self.path, fps=self.info.fps,
                                            audio_from=self.info.path if self.info.has_audio else None,
                                            audio_stream=self.info.audio_stream)
        self.writer.write(self.foreground(batch), self.alpha(batch))


class ForegroundMp4Output(_MatteOutput):
    """The foreground colour estimate (un-premultiplied) as an H.264 MP4, to pair with an alpha."""

    carries_audio = True  # the source's audio is muxed in

    def write(self, batch: FrameBatch) -> None:
        if self.writer is None:
            self.writer = mp4_writer(self.spec, self.path, fps=self.info.fps,
                                     audio_from=self.info.path if self.info.has_audio else None,
                                     audio_stream=self.info.audio_stream, pixels_of=self.info)
        self.writer.write(self.foreground(batch))


class AlphaPng16Output(_MatteOutput):
    """A folder of 16-bit grayscale PNG alpha mattes (``frame_{index:06d}.png``)."""

    def write(self, batch: FrameBatch) -> None:
        if self.writer is None:
            self.writer = Png16SequenceWriter(self.path, start_index=int(batch.indices[0]),
                                              level=self.spec.png_level)
        self.writer.write(alpha16(batch.layers["alpha"]))
