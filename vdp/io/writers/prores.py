"""ProRes 4444 with alpha in a QuickTime ``.mov``: the interchange format of editing and
compositing tools (Premiere, Resolve, Final Cut, After Effects, Nuke).

Raw RGBA frames are piped into imageio-ffmpeg's ffmpeg (``prores_ks``, profile 4444,
``yuva444p10le``: full-resolution chroma, 10-bit colour, 16-bit alpha). The source's audio is
muxed in as 16-bit PCM (what MOV editing workflows expect), cut to the video's length.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from vdp.errors import DecodeError
from vdp.io._ffmpeg import FfmpegPipe, run_ffmpeg
from vdp.io.colour import SDR_BT709, rgb_to_yuv_filter, tag_args
from vdp.io.probing import probe
from vdp.io.source_facts import DEFAULT_TIMEOUT_S
from vdp.io.streams import audio_map
from vdp.io.writers._atomic import remove_path
from vdp.io.writers._pipe import PipeWriter
from vdp.io.writers.png import rgba_frames


class ProresAlphaWriter(PipeWriter):
    """A ProRes 4444 ``.mov`` with alpha, encoded batch by batch.

    Args:
        path: Output ``.mov``.
        fps: Frame rate (constant).
        audio_from: A media file whose audio is muxed in as PCM on `close()` (None: video only).
        timeout_s: Deadline for each batch sent to ffmpeg and for finishing the file.
        audio_stream: Absolute index of the one audio track of `audio_from` to mux (None:
            ffmpeg's pick, see `vdp.io.streams`).
    """

    def __init__(self, path: str | os.PathLike[str], *, fps: float,
                 audio_from: str | os.PathLike[str] | None = None, timeout_s: float = 600.0,
                 audio_stream: int | None = None) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps!r}")
        super().__init__(path, tmp_suffix=".mov")
        self.fps = float(fps)
        self.audio_from = None if audio_from is None else os.fspath(audio_from)
        self.audio_stream = audio_stream
        self.timeout_s = float(timeout_s)
        self._pipe: FfmpegPipe | None = None

    def write(self, rgb: np.ndarray | torch.Tensor, alpha: np.ndarray | torch.Tensor) -> None:
        """Append frames: `rgb` uint8 ``[T,3,H,W]``, `alpha` uint8 ``[T,H,W]`` (255 opaque)."""
        rgba = rgba_frames(rgb, alpha)
        size = (int(rgba.shape[1]), int(rgba.shape[2]))
        self._check_size(size)
        self._send(size, "rgba", [[[memoryview(frame.reshape(-1))]] for frame in rgba])

    def _start(self, size: tuple[int, int], layout: str) -> None:
        self._pipe = FfmpegPipe.raw_video(
            layout, size, self.fps,
            ["-vf", rgb_to_yuv_filter(SDR_BT709, "yuva444p10le"), *tag_args(SDR_BT709),
             "-c:v", "prores_ks", "-profile:v", "4444", "-alpha_bits", "16",
             "-vendor", "apl0", "-f", "mov", self.tmp_path],
            timeout_s=self.timeout_s, what=f"encoding {self.path}")

    def _finalize(self) -> None:
        super()._finalize()
        if self.audio_from is not None:
            muxed = f"{self.tmp_path}.mux.mov"
            try:
                run_ffmpeg(["-y", "-i", self.tmp_path, "-i", self.audio_from, "-map", "0:v:0",
                            "-map", audio_map(self.audio_from, self.audio_stream, self.timeout_s),
                            "-t", f"{self.frames_written / self.fps:.6f}", "-c:v", "copy",
                            "-c:a", "pcm_s16le", "-f", "mov", muxed],
                           timeout_s=self.timeout_s, what=f"muxing audio of {self.audio_from} into {self.path}")
                os.replace(muxed, self.tmp_path)
            finally:
                remove_path(muxed)

def read_rgba16(path: str | os.PathLike[str], *, timeout_s: float = DEFAULT_TIMEOUT_S) -> np.ndarray:
    """Decode a video with alpha (e.g. ProRes 4444) whole: uint16 ``[T,H,W,4]`` RGBA, 0..65535."""
    info = probe(path, timeout_s=timeout_s)
    raw = run_ffmpeg(["-i", os.fspath(path), "-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgba64le", "-"],
                     timeout_s=timeout_s, what=f"decoding {path}", error=DecodeError)
    frame = info.height * info.width * 8
    if not raw or len(raw) % frame:
        raise DecodeError(f"{path}: ffmpeg returned {len(raw)} bytes, not whole {info.width}x{info.height} frames")
    return np.frombuffer(raw, dtype="<u2").reshape(-1, info.height, info.width, 4)
