"""MP4 writer: raw RGB piped into imageio-ffmpeg's ffmpeg (x264, x265 or NVENC; yuv420p or
yuv444p), converted to YUV with the output colour's matrix and range and tagged with it (BT.709
limited range unless told otherwise, see `vdp.io.colour`); optional audio mux."""
from __future__ import annotations

import os
import subprocess

import numpy as np
import torch

from vdp.errors import EncodeError
from vdp.io._ffmpeg import FfmpegPipe, run_ffmpeg
from vdp.io.colour import SDR_BT709, Colour, rgb_to_yuv_filter, tag_args, yuv_tags_filter
from vdp.io.streams import audio_map
from vdp.io.writers._atomic import as_array, remove_path, rgb_alpha_tensors
from vdp.io.writers._pipe import PipeWriter, rgb_alpha_buffers, rgb_buffers, rgb_layout, with_alpha
from vdp.io.writers.encoders import (CPU_CODECS, PIXEL_FORMATS, EncoderChoice, EncoderSettings,
                                    choose_encoder, encoder_args, stream_codec)


def pad_to_even(frames: torch.Tensor) -> torch.Tensor:
    """Repeat the last row/column of ``[T,C,H,W]`` frames so H and W are even (4:2:0 needs it)."""
    h, w = frames.shape[-2:]
    if h % 2:
        frames = torch.cat([frames, frames[..., -1:, :]], dim=-2)
    if w % 2:
        frames = torch.cat([frames, frames[..., -1:]], dim=-1)
    return frames


CODECS = CPU_CODECS


class Mp4Writer(PipeWriter):
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
        threads: x264/x265 threads (None: `vdp.io.writers.encoders.x264_threads` for x264,
            else the encoder's default).
        pixel_format: ``"yuv420p"`` or ``"yuv444p"`` (full-resolution chroma).
        colour: What the RGB frames are and the file is tagged as (`vdp.io.colour.SDR_BT709`;
            an HDR colour, e.g. `hdr_output_colour`, needs ``codec="hevc"`` or ``encoder="x265"``).
        bit_depth: 8, or 10 (HEVC Main10, for HDR outputs).

    Each writer is one file of the frames it is given, so one per frame range (segment) works.
    """

    def __init__(self, path: str | os.PathLike[str], *, fps: float, crf: int = 18,
                 preset: str = "medium", audio_from: str | os.PathLike[str] | None = None,
                 codec: str = "h264", timeout_s: float = 600.0, encoder: EncoderChoice = "auto",
                 threads: int | None = None, pixel_format: str = "yuv420p",
                 colour: Colour = SDR_BT709, bit_depth: int = 8,
                 audio_stream: int | None = None) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps!r}")
        if codec not in CODECS:
            raise ValueError(f"codec must be one of {sorted(CODECS)}, got {codec!r}")
        if pixel_format not in PIXEL_FORMATS:
            raise ValueError(f"pixel_format must be one of {PIXEL_FORMATS}, got {pixel_format!r}")
        if bit_depth not in (8, 10):
            raise ValueError(f"bit_depth must be 8 or 10, got {bit_depth!r}")
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
        self.colour = colour
        self.bit_depth = int(bit_depth)
        if (colour.is_hdr or bit_depth == 10) and self.codec != "hevc":
            raise ValueError("HDR and 10-bit MP4s are HEVC (Main10): pass codec='hevc'")
        self.settings: EncoderSettings | None = None  # chosen when the stream opens
        self.encoded_size: tuple[int, int] | None = None  # (H, W) in the file
        self._pipe: FfmpegPipe | None = None

    @property
    def process(self) -> "subprocess.Popen | None":
        """The running ffmpeg process (None before the first write)."""
        return None if self._pipe is None else self._pipe.process

    def write(self, rgb: np.ndarray | torch.Tensor) -> None:
        """Append frames.

        Args:
            rgb: uint8 ``[T,3,H,W]`` (torch on any device, or numpy), same H,W every batch.
                Either memory layout goes to ffmpeg without a copy: contiguous planes as
                planar RGB, channels-last (as decoded frames are) as packed RGB.

        Raises:
            ValueError: Wrong dtype/shape or a size change.
            EncodeError: Encoding failed (the output is aborted).
        """
        frames = torch.as_tensor(rgb).detach().cpu()
        if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"rgb must be uint8 [T,3,H,W], got {frames.dtype} "
                             f"{tuple(frames.shape)}")
        size = (int(frames.shape[2]), int(frames.shape[3]))
        self._check_size(size)
        if self._layout == "yuv420p":
            raise ValueError("this writer was given YUV planes (write_yuv420); it cannot take RGB too")
        frames = pad_to_even(frames)
        layout = self._layout or rgb_layout(frames)  # the first batch fixes the pipe's layout
        self._send(size, layout, [[frame] for frame in rgb_buffers(frames, layout)])

    def write_yuv420(self, y: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> None:
        """Append frames that are already 4:2:0 YUV in the writer's colour (its matrix and range,
        e.g. BT.709 limited range): nothing is converted, the planes go to the encoder as they are.

        Args:
            y: uint8 ``[T,H,W]`` (H, W even); u, v: uint8 ``[T,H/2,W/2]``.

        Raises:
            ValueError: Wrong shapes, an odd size, a writer that is not 8-bit ``yuv420p``, or
                one that was given RGB frames.
        """
        planes = [as_array(p, name=n, dtype=np.uint8, ndim=3) for p, n in ((y, "y"), (u, "u"), (v, "v"))]
        t, h, w = planes[0].shape
        if h % 2 or w % 2 or any(p.shape != (t, h // 2, w // 2) for p in planes[1:]):
            raise ValueError(f"y must be [T,H,W] with H, W even and u, v [T,H/2,W/2]; got "
                             f"{[p.shape for p in planes]}")
        if self.pixel_format != "yuv420p" or self.bit_depth != 8:
            raise ValueError(f"write_yuv420 needs an 8-bit yuv420p writer, this one is "
                             f"{self.pixel_format} {self.bit_depth}-bit")
        if self._layout not in ("", "yuv420p"):
            raise ValueError("this writer was given RGB frames; it cannot take YUV planes too")
        self._check_size((h, w))
        self._send((h, w), "yuv420p", [[[memoryview(p[i]).cast("B") for p in planes]] for i in range(t)])

    def _start(self, size: tuple[int, int], layout: str) -> None:
        self.encoded_size = (size[0] + size[0] % 2, size[1] + size[1] % 2)
        s = self.settings = choose_encoder(self.codec, self.encoder, crf=self.crf,
                                           preset=self.preset, threads=self.threads,
                                           pixel_format=self.pixel_format, pixels=size[0] * size[1])
        pix_fmt = self.pixel_format if self.bit_depth == 8 else f"{self.pixel_format}10le"
        args = [*self._filter_args(layout, pix_fmt), "-c:v", s.name, *encoder_args(s),
                *tag_args(self.colour)]
        if self.codec == "hevc":
            args += ["-tag:v", "hvc1"]
        self._pipe = FfmpegPipe.raw_videos(self._input_formats(layout), self.encoded_size, self.fps,
                                           [*args, "-f", "mp4", self.tmp_path],
                                           timeout_s=self.timeout_s, what=f"encoding {self.path}")

    def _input_formats(self, layout: str) -> list[str]:
        """The raw pixel format of each of ffmpeg's inputs."""
        return [layout]

    def _filter_args(self, layout: str, pix_fmt: str) -> list[str]:
        """ffmpeg's filter options: the input converted to (or tagged as) `pix_fmt`."""
        vf = yuv_tags_filter(self.colour) if layout == "yuv420p" else rgb_to_yuv_filter(self.colour, pix_fmt)
        return ["-vf", vf]

    @property
    def encoder_used(self) -> str | None:
        """The FFmpeg encoder writing the stream (e.g. ``libx264``), None before the first write."""
        return None if self.settings is None else self.settings.name

    def _finalize(self) -> None:
        super()._finalize()
        if self.audio_from is not None:
            self._remux(self.audio_from)

    def _remux(self, source: str) -> None:
        """Mux `source`'s audio (cut to the video's duration, never cutting video)."""
        muxed = f"{self.tmp_path}.mux.mp4"
        base = ["-y", "-i", self.tmp_path, "-i", source, "-map", "0:v:0",
                "-map", audio_map(source, self.audio_stream, self.timeout_s),
                "-t", f"{self.frames_written / self.fps:.6f}", "-c:v", "copy", "-movflags", "+faststart"]
        if self.codec == "hevc":
            base += ["-tag:v", "hvc1"]
        try:
            try:
                run_ffmpeg([*base, "-c:a", "copy", "-f", "mp4", muxed], timeout_s=self.timeout_s,
                           what=f"muxing audio of {source} into {self.path}")
            except EncodeError:  # MP4 cannot hold this audio codec as is: re-encode
                run_ffmpeg([*base, "-c:a", "aac", "-f", "mp4", muxed], timeout_s=self.timeout_s,
                           what=f"muxing audio of {source} (as AAC) into {self.path}")
            os.replace(muxed, self.tmp_path)
        finally:
            remove_path(muxed)



class CompositeMp4Writer(Mp4Writer):
    """An MP4 of RGB frames composited over a solid colour by their alpha matte, the blend done
    by the encoding ffmpeg in the output's YUV (its ``overlay``): this process sends the frames
    and mattes as they are and makes no composited copy.

    Blending is linear, so luma is what converting RGB composited frames gives (up to rounding);
    4:2:0 chroma blends with the matte averaged over each 2x2 block.

    Args:
        background: The colour ``(R, G, B)`` 0..255 behind the frames, in the output's colour.
        kwargs: As `Mp4Writer` (audio, encoder, colour, bit depth, ...).
    """

    def __init__(self, path: str | os.PathLike[str], *, background: tuple[int, int, int],
                 **kwargs) -> None:
        if len(background) != 3 or not all(0 <= int(c) <= 255 for c in background):
            raise ValueError(f"background must be three values in 0..255, got {background!r}")
        super().__init__(path, **kwargs)
        self.background = tuple(int(c) for c in background)

    def write(self, rgb: np.ndarray | torch.Tensor, alpha: np.ndarray | torch.Tensor) -> None:  # type: ignore[override]
        """Append frames: `rgb` uint8 ``[T,3,H,W]`` (either memory layout, as `Mp4Writer.write`),
        `alpha` uint8 ``[T,H,W]`` (255 = the frame, 0 = the background).

        Raises:
            ValueError: Wrong dtypes/shapes or a size change.
            EncodeError: Encoding failed (the output is aborted).
        """
        frames, matte = rgb_alpha_tensors(rgb, alpha)
        size = (int(frames.shape[2]), int(frames.shape[3]))
        self._check_size(size)
        frames, matte = pad_to_even(frames), pad_to_even(matte.unsqueeze(1))[:, 0]
        layout = self._layout or rgb_layout(frames)
        self._send(size, layout, rgb_alpha_buffers(frames, matte, layout))

    def write_yuv420(self, *_: object) -> None:
        raise ValueError("a composite writer takes RGB frames and their alpha (write)")

    def _input_formats(self, layout: str) -> list[str]:
        return [layout, "gray"]

    def _filter_args(self, layout: str, pix_fmt: str) -> list[str]:
        h, w = self.encoded_size
        r, g, b = self.background
        # the background is one frame, converted once and repeated (loop), behind every frame
        behind = (f"color=c=0x{r:02x}{g:02x}{b:02x}:s={w}x{h}:r={self.fps!r},format=rgb24,"
                  f"trim=end_frame=1,{rgb_to_yuv_filter(self.colour, pix_fmt)},loop=loop=-1:size=1")
        blend = "yuv444" if pix_fmt.startswith("yuv444") else "yuv420"
        blend += "p10" if self.bit_depth == 10 else ""
        front = with_alpha(self.colour, pix_fmt.replace("yuv", "yuva"))
        return ["-filter_complex",
                f"{behind}[behind];{front}[front];[behind][front]overlay=format={blend}:shortest=1,"
                f"format={pix_fmt},{yuv_tags_filter(self.colour)}"]
