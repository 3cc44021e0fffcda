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

import torch

from vdp.io import Mp4Writer
from vdp.outputs.colormap import StableRange
from vdp.outputs.depth import DepthColorMp4Output
from vdp.outputs.encoding import mp4_writer
from vdp.outputs.stereo import _StereoOutput, choose_codec
from vdp.stereo.anaglyph import anaglyph_dubois
from vdp.types import FrameBatch


class SbsCrossOutput(_StereoOutput):
    """Full side-by-side with the right view on the left, for cross-eyed free viewing."""

    def pack(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        return torch.cat([right, left], dim=3)


class Anaglyph444Output(_StereoOutput):
    """Red-cyan (Dubois) anaglyph encoded with full-resolution chroma (yuv444p)."""

    pixel_format = "yuv444p"

    def pack(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        return anaglyph_dubois(left, right)


class RgbdOutput(DepthColorMp4Output):
    """Colour | depth side by side (2W x H), depth as grey with near = white, one range per video."""

    carries_audio = True  # the source's audio is muxed in
    shows_video = True  # the colour half: frames() always (not depth_color's depth-only YUV path)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.range = StableRange(low_pct=1.0, high_pct=99.0, margin=0.05)

    def frames(self, batch: FrameBatch) -> torch.Tensor:
        grey = (self.range.normalise(self.nearness(batch)) * 255).round().clamp(0, 255).to(torch.uint8)
        if tuple(grey.shape[-2:]) != (batch.height, batch.width):
            grey = torch.nn.functional.interpolate(grey[:, None].float(), size=(batch.height, batch.width),
                                                   mode="bilinear", align_corners=False)[:, 0]
            grey = grey.round().clamp(0, 255).to(torch.uint8)
        return torch.cat([batch.frames, grey[:, None].expand(-1, 3, -1, -1)], dim=3)

    def open_writer(self, frames: torch.Tensor) -> Mp4Writer:
        return mp4_writer(self.spec, self.path, fps=self.info.fps,
                          codec=choose_codec(frames.shape[-1], frames.shape[-2]),
                          audio_from=self.info.path if self.info.has_audio else None,
                          audio_stream=self.info.audio_stream, pixels_of=self.info)
