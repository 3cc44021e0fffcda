"""Which H.264/HEVC encoder an MP4 gets: NVENC when the machine has a working one, else x264/x265.

=========  ================================================================================
encoder    FFmpeg encoder
=========  ================================================================================
``auto``   ``h264_nvenc``/``hevc_nvenc`` where NVENC works here, else ``cpu``
``cpu``    ``libx264`` (``libx265`` for frames beyond H.264 decoders' limits), never NVENC
``x265``   ``libx265`` always: HEVC, ~half the size of H.264 at the same quality
``nvenc``  ``h264_nvenc``/``hevc_nvenc``; fails where NVENC does not work
=========  ================================================================================

Availability is probed once per process, codec and pixel format by really encoding two small
frames with the NVENC encoder of the ffmpeg that writes the MP4s (an FFmpeg build may list
``h264_nvenc`` on a machine without an NVIDIA driver or GPU; only an encode shows it works).

Threads: unless asked for, x264 at ``ultrafast`` (the outputs' default) gets one thread per
1080p frame's worth of pixels (at most the cores this process may use). x264's own default
(1.5 threads per core, frame-parallel) costs 10-15% more CPU per 1080p frame for speed vdp
does not need: one ``ultrafast`` thread encodes 1080p at ~120 fps, faster than a GPU makes
depth, and vdp's parallelism is its chunks, each with its own encoder. Slower presets keep
x264's default (``superfast`` on one thread: ~60 fps at 1080p, and no CPU saved).

Pixel formats: ``yuv420p`` (plays everywhere) or ``yuv444p``, which keeps full-resolution colour
(no chroma smear on saturated edges, e.g. anaglyphs) at the cost of H.264 High 4:4:4 / HEVC
RExt, which hardware decoders of phones and headsets often lack.
"""
from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from vdp.errors import EncodeError
from vdp.io._ffmpeg import run_ffmpeg

CPU_CODECS = {"h264": "libx264", "hevc": "libx265"}
NVENC_CODECS = {"h264": "h264_nvenc", "hevc": "hevc_nvenc"}
EncoderChoice = Literal["auto", "cpu", "x265", "nvenc"]
ENCODERS: tuple[str, ...] = get_args(EncoderChoice)
PIXEL_FORMATS = ("yuv420p", "yuv444p")
NVENC_PRESET = "p1"  # NVENC's fastest preset (p1..p7); quality set by constant QP-like `cq`
#: x264 presets fast enough for one thread per `THREAD_PIXELS` (see the module docstring).
LEAN_PRESETS = ("ultrafast",)
THREAD_PIXELS = 1920 * 1088

_PROBED: dict[tuple[str, str], str | None] = {}  # (codec, pixel format) -> None (works) or why not
_LOCK = threading.Lock()


@dataclass(frozen=True)
class EncoderSettings:
    """The encoder of one stream and its settings (see `encoder_args`), and why it was chosen."""

    name: str  # e.g. "libx264" or "h264_nvenc"
    crf: int | None
    preset: str
    options: dict[str, Any] = field(default_factory=dict)
    fallback_reason: str | None = None  # set when NVENC was wanted ("auto") but is unusable


def nvenc_problem(codec: str, pixel_format: str = "yuv420p") -> str | None:
    """None if NVENC encodes `codec` in `pixel_format` here, else the reason it does not
    (probed once, cached)."""
    with _LOCK:
        if (codec, pixel_format) not in _PROBED:
            _PROBED[codec, pixel_format] = _probe(codec, pixel_format)
        return _PROBED[codec, pixel_format]


def stream_codec(codec: str, encoder: str) -> str:
    """The codec an MP4 stream gets: `codec` (the caller's choice by frame size), HEVC for x265."""
    return "hevc" if encoder == "x265" else codec


def encoder_args(settings: EncoderSettings) -> list[str]:
    """ffmpeg output options for `settings` (``-preset``, ``-crf`` and the encoder's own)."""
    args = ["-preset", settings.preset]
    if settings.crf is not None:
        args += ["-crf", str(settings.crf)]
    for key, value in settings.options.items():
        args += [f"-{'b:v' if key == 'b' else key}", str(value)]
    return args


def _probe(codec: str, pixel_format: str) -> str | None:
    try:
        run_ffmpeg(["-f", "lavfi", "-i", "color=black:size=256x256:rate=24", "-frames:v", "2",
                    "-pix_fmt", pixel_format, "-c:v", NVENC_CODECS[codec], "-preset", NVENC_PRESET,
                    "-f", "null", "-"], timeout_s=60.0, what=f"probing {NVENC_CODECS[codec]}")
    except Exception as exc:  # any failure means: not usable on this machine
        return f"{NVENC_CODECS[codec]} failed to encode a test frame: {str(exc)[-300:]}"
    return None


def x264_threads(preset: str, pixels: int) -> int | None:
    """Threads for x264 at `preset` on frames of `pixels` when none were asked for (None:
    x264's default); see the module docstring."""
    if preset not in LEAN_PRESETS:
        return None
    return max(1, min(len(os.sched_getaffinity(0)), math.ceil(pixels / THREAD_PIXELS)))


def choose_encoder(codec: str, encoder: EncoderChoice, *, crf: int, preset: str,
                   threads: int | None, pixel_format: str = "yuv420p",
                   pixels: int | None = None) -> EncoderSettings:
    """The encoder for an MP4 stream.

    Args:
        codec: ``"h264"`` or ``"hevc"``.
        encoder: ``"auto"`` (NVENC if it works here, else the CPU encoder), ``"cpu"``,
            ``"x265"`` (libx265 whatever `codec` says, see `stream_codec`) or ``"nvenc"``
            (required: no fallback).
        crf: Quality (x264/x265 crf; NVENC's ``cq``).
        preset: x264/x265 preset (NVENC uses its fastest preset).
        threads: CPU encoder threads (None: `x264_threads` for x264 given `pixels`, else the
            encoder's default).
        pixel_format: ``"yuv420p"`` or ``"yuv444p"``.
        pixels: Pixels per frame (height x width), for the default x264 threads.

    Raises:
        ValueError: Unknown codec, encoder or pixel format.
        EncodeError: ``"nvenc"`` asked for where it does not work.
    """
    if codec not in CPU_CODECS:
        raise ValueError(f"codec must be one of {sorted(CPU_CODECS)}, got {codec!r}")
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, got {encoder!r}")
    if pixel_format not in PIXEL_FORMATS:
        raise ValueError(f"pixel_format must be one of {', '.join(PIXEL_FORMATS)}, got {pixel_format!r}")
    codec = stream_codec(codec, encoder)
    reason = None
    if encoder in ("auto", "nvenc"):
        reason = nvenc_problem(codec, pixel_format)
        if reason is None:
            return EncoderSettings(NVENC_CODECS[codec], None, NVENC_PRESET,
                                   {"rc": "vbr", "cq": str(crf), "b": "0"})
        if encoder == "nvenc":
            raise EncodeError(f"encoder 'nvenc' was asked for but cannot be used here: {reason}")
    options: dict[str, Any] = {}
    if threads is None and codec == "h264" and pixels is not None:
        threads = x264_threads(preset, pixels)
    if threads is not None:
        options["threads"] = str(threads)
    if codec == "hevc":
        options["x265-params"] = "log-level=error"
    return EncoderSettings(CPU_CODECS[codec], crf, preset, options, reason)
