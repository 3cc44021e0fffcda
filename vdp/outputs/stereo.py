"""Stereo outputs for VR players and 3D displays, from layer ``stereo`` (left, right views).

==============  ===========================  ============================================
kind            default name                 frame (for a W x H source)
==============  ===========================  ============================================
``sbs_full``    ``stereo_LRF_Full_SBS.mp4``  2W x H, left view on the left
``sbs_half``    ``stereo_LR_Half_SBS.mp4``   W x H, each view squeezed to half width
``tb_full``     ``stereo_Full_TB.mp4``       W x 2H, left view on top
``tb_half``     ``stereo_Half_TB.mp4``       W x H, each view squeezed to half height
``anaglyph``    ``stereo_Anaglyph.mp4``      W x H, red-cyan (Dubois), for glasses
==============  ===========================  ============================================

File names: VR players pick the projection and stereo layout from tokens in the file name,
so keep them when renaming. ``_LR``/``_SBS`` mean side-by-side with the left eye on the left
(``_LRF``/``_Full_SBS``: full width per eye; ``_Half_SBS``: squeezed, the player stretches it
back), ``_TB``/``_OU`` mean top-bottom with the left eye on top. No ``_180``/``_360`` token: the
video is flat (a 3D screen in the player), not an immersive projection.

Codec: H.264 (libx264, yuv420p) when the frame fits H.264 level 5.2, which hardware decoders
(phones, standalone headsets) support, i.e. at most 4096 pixels a side and 36,864
macroblocks (e.g. full SBS from 1080p: 3840x1080). Larger frames (full SBS or full TB from
4K: 7680x2160, 3840x4320) are HEVC (libx265, tagged ``hvc1`` for Apple players). Every output
carries the source's audio, copied (re-encoded to AAC only where MP4 cannot hold the codec),
at the source's frame rate, so durations match the source.
"""
from __future__ import annotations

import math
from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

import torch

from vdp.io import Mp4Writer
from vdp.outputs.base import WriterOutput
from vdp.outputs.encoding import mp4_writer
from vdp.outputs.stamp import stamp, text_mask
from vdp.spec import OutputSpec
from vdp.stereo.anaglyph import anaglyph_dubois
from vdp.stereo.layout import pack_stereo
from vdp.types import FrameBatch, VideoInfo

SYNTHETIC_STAMP = "synthetic weights - not real depth"
#: Largest frame H.264 level 5.2 allows, and the widest side hardware decoders take.
H264_MAX_MACROBLOCKS = 36_864
H264_MAX_SIDE = 4096


def choose_codec(width: int, height: int) -> str:
    """``"h264"`` when a ``width x height`` frame fits H.264 level 5.2 decoders, else ``"hevc"``."""
    macroblocks = math.ceil(width / 16) * math.ceil(height / 16)
    if max(width, height) <= H264_MAX_SIDE and macroblocks <= H264_MAX_MACROBLOCKS:
        return "h264"
    return "hevc"


class _StereoOutput(WriterOutput):
    """Base of the stereo outputs: packs each frame's two views, encodes with source audio."""

    carries_audio = True  # the source's audio is muxed in

    pixel_format: ClassVar[str] = "yuv420p"

    def __init__(self, spec: OutputSpec, path: Path, info: VideoInfo, *,
                 synthetic: bool = False, **_: object) -> None:
        super().__init__(spec, path, info)
        self.synthetic = synthetic
        self.codec: str | None = None
        self._mask: torch.Tensor | None = None

    def views(self, batch: FrameBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Left and right views uint8 ``[T,3,H,W]`` (stamped when the depth is synthetic)."""
        stereo = batch.layers["stereo"]
        if stereo.dtype != torch.uint8 or stereo.ndim != 5 or stereo.shape[1:3] != (2, 3):
            raise ValueError(f"layer 'stereo' must be uint8 [T,2,3,H,W], got {stereo.dtype} "
                             f"{tuple(stereo.shape)}")
        left, right = stereo[:, 0], stereo[:, 1]
        if self.synthetic:
            if self._mask is None:
                self._mask = text_mask(SYNTHETIC_STAMP, left.shape[-1], left.shape[-2])
            left, right = stamp(left, self._mask), stamp(right, self._mask)
        return left, right

    @abstractmethod
    def pack(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """The frames to encode, uint8 ``[T,3,H',W']``."""

    def open_writer(self, codec: str, **kwargs) -> Mp4Writer:
        """The output's MP4 writer (kwargs: more `mp4_writer` arguments, for subclasses)."""
        return mp4_writer(self.spec, self.path, fps=self.info.fps, codec=codec,
                          pixel_format=self.pixel_format,
                          audio_from=self.info.path if self.info.has_audio else None,
                          audio_stream=self.info.audio_stream, pixels_of=self.info, **kwargs)

    def write(self, batch: FrameBatch) -> None:
        frames = self.pack(*self.views(batch))
        if self.writer is None:
            self.codec = choose_codec(frames.shape[-1], frames.shape[-2])
            self.writer = self.open_writer(self.codec)
        self.writer.write(frames)


class _PackedOutput(_StereoOutput):
    layout: ClassVar[str] = ""

    def pack(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        return pack_stereo(left, right, self.layout)


class SbsFullOutput(_PackedOutput):
    """Full side-by-side (2W x H), left eye on the left."""

    layout = "sbs_full"


class SbsHalfOutput(_PackedOutput):
    """Half side-by-side (W x H): each eye squeezed to half width."""

    layout = "sbs_half"


class TbFullOutput(_PackedOutput):
    """Full top-bottom (W x 2H), left eye on top."""

    layout = "tb_full"


class TbHalfOutput(_PackedOutput):
    """Half top-bottom (W x H): each eye squeezed to half height."""

    layout = "tb_half"


class AnaglyphOutput(_StereoOutput):
    """Red-cyan anaglyph (Dubois), left eye red."""

    def pack(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        return anaglyph_dubois(left, right)
