"""MP4 writer: TorchCodec's streaming `Encoder` (x264, x265 or NVENC; yuv420p or yuv444p),
optional audio mux."""
from __future__ import annotations

import os

import numpy as np
import torch
from torchcodec.encoders import Encoder

from vdp.errors import EncodeError
from vdp.io._ffmpeg import run_ffmpeg
from vdp.io.streams import audio_map
from vdp.io.writers._atomic import AtomicOutput, remove_path
from vdp.io.writers.encoders import (CPU_CODECS, PIXEL_FORMATS, EncoderChoice, EncoderSettings,
                                    choose_encoder, stream_codec)


def pad_to_even(frames: torch.Tensor) -> torch.Tensor:
    """Repeat the last row/column of ``[T,C,H,W]`` frames so H and W are even (4:2:0 needs it)."""
    h, w = frames.shape[-2:]
    if h % 2:
        frames = torch.cat([frames, frames[..., -1:, :]], dim=-2)
    if w % 2:
        frames = torch.cat([frames, frames[..., -1:]], dim=-1)
    return frames


CODECS = CPU_CODECS


class Mp4Writer(AtomicOutput):
    """An H.264 or HEVC MP4 encoded batch by batch at a constant frame rate.

    4:2:0 chroma needs even sizes: an odd width/height is padded by one repeated edge
    row/column, so the file is `encoded_size` (e.g. 161x121 -> 162x122).

    Args:
        path: Output ``.mp4``.
        fps: Frame rate of the output (constant).
        crf: Encoder quality (0 lossless .. 51; 18 is visually near-lossless for libx264).
        preset: Encoder speed/size trade-off, e.g. ``"veryfast"``, ``"medium"``.
        codec: ``"h264"`` (libx264) or ``"hevc"`` (libx265, tagged ``hvc1`` so Apple and VR
            players accept it; for frames wider than H.264 decoders take).
        audio_from: A media file whose audio track is muxed in on `close()` (copied when
            MP4 can hold the codec, else re-encoded to AAC; cut to the video's length).
            A file without audio gives a video-only MP4.
        audio_stream: Absolute index of the one audio track of `audio_from` to mux (None:
            ffmpeg's pick, see `vdp.io.streams`).
        timeout_s: Deadline of each ffmpeg run (the audio mux).
        encoder: ``"auto"`` (NVENC where it works, else x264/x265), ``"cpu"``, ``"x265"``
            (HEVC whatever `codec` says) or ``"nvenc"`` (see `vdp.io.writers.encoders`); the
            one used is `encoder_used` once the first frames are written.
        threads: x264/x265 threads (None: the encoder's default).
        pixel_format: ``"yuv420p"`` or ``"yuv444p"`` (full-resolution chroma).
    """

    def __init__(self, path: str | os.PathLike[str], *, fps: float, crf: int = 18,
                 preset: str = "medium", audio_from: str | os.PathLike[str] | None = None,
                 codec: str = "h264", timeout_s: float = 600.0, encoder: EncoderChoice = "auto",
                 threads: int | None = None, pixel_format: str = "yuv420p",
                 audio_stream: int | None = None) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps!r}")
        if codec not in CODECS:
            raise ValueError(f"codec must be one of {sorted(CODECS)}, got {codec!r}")
        if pixel_format not in PIXEL_FORMATS:
            raise ValueError(f"pixel_format must be one of {PIXEL_FORMATS}, got {pixel_format!r}")
        super().__init__(path, tmp_suffix=".mp4")
        self.fps = float(fps)
        self.crf = int(crf)
        self.preset = preset
        self.codec = stream_codec(codec, encoder)
        self.audio_from = None if audio_from is None else os.fspath(audio_from)
        self.audio_stream = audio_stream
        self.timeout_s = float(timeout_s)
        self.encoder = encoder
        self.threads = threads
        self.pixel_format = pixel_format
        self.settings: EncoderSettings | None = None  # chosen when the stream opens
        self.frame_size: tuple[int, int] | None = None  # (H, W) of the input
        self.encoded_size: tuple[int, int] | None = None  # (H, W) in the file
        self._encoder: Encoder | None = None
        self._stream = None

    def write(self, rgb: np.ndarray | torch.Tensor) -> None:
        """Append frames.

        Args:
            rgb: uint8 ``[T,3,H,W]`` (torch on any device, or numpy), same H,W every batch.

        Raises:
            ValueError: Wrong dtype/shape or a size change.
            EncodeError: Encoding failed (the output is aborted).
        """
        frames = torch.as_tensor(rgb).detach().cpu()
        if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"rgb must be uint8 [T,3,H,W], got {frames.dtype} "
                             f"{tuple(frames.shape)}")
        size = (int(frames.shape[2]), int(frames.shape[3]))
        if self.frame_size is not None and size != self.frame_size:
            raise ValueError(f"frame size changed from {self.frame_size} to {size}")

        def run() -> None:
            if self._encoder is None:
                self._open(size)
            self._stream.add_frames(pad_to_even(frames).contiguous())
            self.frames_written += int(frames.shape[0])
        self._guarded(run)

    def _open(self, size: tuple[int, int]) -> None:
        self.frame_size = size
        self.encoded_size = (size[0] + size[0] % 2, size[1] + size[1] % 2)
        encoder = Encoder()
        s = self.settings = choose_encoder(self.codec, self.encoder, crf=self.crf,
                                           preset=self.preset, threads=self.threads,
                                           pixel_format=self.pixel_format)
        self._stream = encoder.add_video(height=self.encoded_size[0], width=self.encoded_size[1],
                                         frame_rate=self.fps, device="cpu", codec=s.name,
                                         pixel_format=self.pixel_format, crf=s.crf, preset=s.preset,
                                         extra_options=s.options or None)
        encoder.open_file(self.tmp_path)
        self._encoder = encoder

    @property
    def encoder_used(self) -> str | None:
        """The FFmpeg encoder writing the stream (e.g. ``libx264``), None before the first write."""
        return None if self.settings is None else self.settings.name

    def _finalize(self) -> None:
        if self._encoder is None:
            raise EncodeError(f"{self.path}: no frames were written")
        encoder, self._encoder = self._encoder, None
        try:
            encoder.close()
        except RuntimeError as exc:
            raise EncodeError(f"{self.path}: finishing the {self.codec} stream failed: {exc}") from exc
        if self.audio_from is not None or self.codec == "hevc":
            self._remux(self.audio_from)

    def _remux(self, source: str | None) -> None:
        """Mux `source`'s audio (cut to the video's duration, never cutting video) and tag HEVC."""
        muxed = f"{self.tmp_path}.mux.mp4"
        base = ["-y", "-i", self.tmp_path]
        if source is not None:
            base += ["-i", source, "-map", "0:v:0", "-map", audio_map(source, self.audio_stream, self.timeout_s),
                     "-t", f"{self.frames_written / self.fps:.6f}"]
        base += ["-c:v", "copy", "-movflags", "+faststart"]
        if self.codec == "hevc":
            base += ["-tag:v", "hvc1"]
        try:
            try:
                run_ffmpeg([*base, "-c:a", "copy", "-f", "mp4", muxed], timeout_s=self.timeout_s,
                           what=f"muxing audio of {source} into {self.path}" if source
                           else f"tagging {self.path} as hvc1")
            except EncodeError:  # MP4 cannot hold this audio codec as is: re-encode
                run_ffmpeg([*base, "-c:a", "aac", "-f", "mp4", muxed], timeout_s=self.timeout_s,
                           what=f"muxing audio of {source} (as AAC) into {self.path}")
            os.replace(muxed, self.tmp_path)
        finally:
            remove_path(muxed)

    def _discard(self) -> None:
        encoder, self._encoder = self._encoder, None
        if encoder is not None:
            try:
                encoder.close()
            except Exception:  # the output is being thrown away anyway
                pass
