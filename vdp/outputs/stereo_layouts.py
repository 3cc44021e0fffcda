"""More stereo layouts: cross-eyed side by side, RGBD (colour | depth) and a 4:4:4 anaglyph.

===============  ============================  =================================================
kind             default name                  frame (for a W x H source)
===============  ============================  =================================================
``sbs_cross``    ``{stem}_RLF_Cross_SBS.mp4``  2W x H, right view on the left (cross-eyed viewing)
``rgbd``         ``{stem}_RGBD.mp4``           2W x H, colour | depth (grey, near = white)
``anaglyph_444``  ``{stem}_Anaglyph_444.mp4``   W x H red-cyan, 4:4:4 chroma: no colour smear
===============  ============================  =================================================

Red-cyan anaglyphs put opposite saturated colours in neighbouring pixels; 4:2:0 encoding
averages chroma over 2x2 pixels, which bleeds red into cyan at every depth edge (ghosting
through the glasses). ``anaglyph_444`` keeps full-resolution chroma (H.264 High 4:4:4). Measured
on a real 426x240 pair with 8 px disparity (tests/outputs/test_stereo_layouts.py), mean error of
red minus cyan at red/cyan edges: crf 18: 21.1 (4:2:0) vs 9.5 (4:4:4) at the same file size;
crf 10: 20.3 vs 5.1; crf 0: 20.2 vs 0.6 (levels of 255).
"""
from __future__ import annotations

from pathlib import Path

import torch

from vdp.io.writers.encoders import EncoderMp4Writer
from vdp.outputs.base import WriterOutput
from vdp.outputs.colormap import StableRange
from vdp.outputs.stereo import _StereoOutput, choose_codec
from vdp.outputs.stamp import stamp, text_mask
from vdp.spec import OutputSpec
from vdp.stereo.anaglyph import anaglyph_dubois
from vdp.types import FrameBatch, VideoInfo

SYNTHETIC_STAMP = "synthetic weights - not real depth"


class SbsCrossOutput(_StereoOutput):
    """Full side-by-side with the right view on the left, for cross-eyed free viewing."""

    def pack(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        return torch.cat([right, left], dim=3)


class Anaglyph444Output(_StereoOutput):
    """Red-cyan (Dubois) anaglyph encoded with full-resolution chroma (yuv444p)."""

    pixel_format = "yuv444p"

    def pack(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        return anaglyph_dubois(left, right)

    def write(self, batch: FrameBatch) -> None:
        frames = self.pack(*self.views(batch))
        if self.writer is None:
            self.codec = choose_codec(frames.shape[-1], frames.shape[-2])
            self.writer = EncoderMp4Writer(
                self.path, fps=self.info.fps, crf=self.spec.crf, preset=self.spec.preset, codec=self.codec,
                encoder=self.spec.encoder, pixel_format=self.pixel_format,
                audio_from=self.info.path if self.info.has_audio else None)
        self.writer.write(frames)


class RgbdOutput(WriterOutput):
    """Colour | depth side by side (2W x H), depth as grey with near = white, one range per video."""

    needs = "depth"

    def __init__(self, spec: OutputSpec, path: Path, info: VideoInfo, *, depth_kind: str = "relative",
                 synthetic: bool = False, **_: object) -> None:
        super().__init__(spec, path, info)
        self.depth_kind = depth_kind
        self.synthetic = synthetic
        self.range = StableRange(low_pct=1.0, high_pct=99.0, margin=0.05)
        self._mask: torch.Tensor | None = None

    def frames(self, batch: FrameBatch) -> torch.Tensor:
        depth = batch.layers["depth"].float()
        near = depth if self.depth_kind == "relative" else 1.0 / depth.clamp_min(1e-3)
        grey = (self.range.normalise(near) * 255).round().clamp(0, 255).to(torch.uint8)
        if tuple(grey.shape[-2:]) != (batch.height, batch.width):
            grey = torch.nn.functional.interpolate(grey[:, None].float(), size=(batch.height, batch.width),
                                                   mode="bilinear", align_corners=False)[:, 0]
            grey = grey.round().clamp(0, 255).to(torch.uint8)
        return torch.cat([batch.frames, grey[:, None].expand(-1, 3, -1, -1)], dim=3)

    def write(self, batch: FrameBatch) -> None:
        frames = self.frames(batch)
        if self.synthetic:
            if self._mask is None:
                self._mask = text_mask(SYNTHETIC_STAMP, frames.shape[3], frames.shape[2])
            frames = stamp(frames, self._mask)
        if self.writer is None:
            self.writer = EncoderMp4Writer(
                self.path, fps=self.info.fps, crf=self.spec.crf, preset=self.spec.preset,
                codec=choose_codec(frames.shape[-1], frames.shape[-2]), encoder=self.spec.encoder,
                audio_from=self.info.path if self.info.has_audio else None)
        self.writer.write(frames)
