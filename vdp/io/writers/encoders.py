"""An `Mp4Writer` with a chosen encoder (x264, x265, NVENC) and chroma layout (4:2:0 or 4:4:4).

=========  ==================================  ============================================
encoder    FFmpeg encoder                      notes
=========  ==================================  ============================================
``x264``   ``libx264``                         H.264, plays everywhere
``x265``   ``libx265`` (tagged ``hvc1``)       HEVC, ~half the size at the same quality
``nvenc``  ``h264_nvenc`` / ``hevc_nvenc``     NVIDIA GPU encoder (HEVC above H.264's limits)
=========  ==================================  ============================================

4:4:4 keeps full-resolution colour (no chroma smear on saturated edges, e.g. anaglyphs) at
the cost of H.264 High 4:4:4 / HEVC RExt, which hardware decoders of phones and headsets
often lack.
"""
from __future__ import annotations

import os

from torchcodec.encoders import Encoder

from vdp.errors import EncodeError
from vdp.io.writers.mp4 import Mp4Writer

ENCODERS = ("x264", "x265", "nvenc")
PIXEL_FORMATS = ("yuv420p", "yuv444p")


def ffmpeg_encoder(encoder: str, codec: str) -> str:
    """FFmpeg encoder name of `encoder` for `codec` (``"h264"`` or ``"hevc"``)."""
    if encoder == "nvenc":
        return f"{codec}_nvenc"
    return {"h264": "libx264", "hevc": "libx265"}[codec]


class EncoderMp4Writer(Mp4Writer):
    """`Mp4Writer` with `encoder` (x264, x265, nvenc) and `pixel_format` (yuv420p, yuv444p).

    ``x265`` forces HEVC; ``x264`` and ``nvenc`` keep the `codec` the caller chose (H.264 where
    it fits, HEVC beyond H.264 decoders' limits).
    """

    def __init__(self, path: str | os.PathLike[str], *, encoder: str = "x264",
                 pixel_format: str = "yuv420p", codec: str = "h264", **kwargs) -> None:
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
        if pixel_format not in PIXEL_FORMATS:
            raise ValueError(f"pixel_format must be one of {PIXEL_FORMATS}, got {pixel_format!r}")
        super().__init__(path, codec="hevc" if encoder == "x265" else codec, **kwargs)
        self.encoder = encoder
        self.pixel_format = pixel_format

    def _open(self, size: tuple[int, int]) -> None:
        self.frame_size = size
        self.encoded_size = (size[0] + size[0] % 2, size[1] + size[1] % 2)
        name = ffmpeg_encoder(self.encoder, self.codec)
        extra = {"x265-params": "log-level=error"} if name == "libx265" else None
        options = {"crf": self.crf, "preset": self.preset}
        if self.encoder == "nvenc":  # NVENC has no crf: constant quality via -cq, presets p1..p7
            options = {}
            extra = {"rc": "vbr", "cq": str(max(self.crf, 1)), "preset": "p4"}
        encoder = Encoder()
        try:
            self._stream = encoder.add_video(height=self.encoded_size[0], width=self.encoded_size[1],
                                             frame_rate=self.fps, device="cpu", codec=name,
                                             pixel_format=self.pixel_format, extra_options=extra, **options)
            encoder.open_file(self.tmp_path)
        except (RuntimeError, ValueError) as exc:
            hint = " (nvenc needs an NVIDIA GPU with its driver and an FFmpeg built with NVENC)" \
                if self.encoder == "nvenc" else ""
            raise EncodeError(f"{self.path}: cannot open the {name} encoder{hint}: {exc}") from None
        self._encoder = encoder
