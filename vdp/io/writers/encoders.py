"""Which H.264/HEVC encoder an MP4 gets: NVENC when the machine has a working one, else x264/x265.

Availability is probed once per process and codec by really encoding two small frames with
the NVENC encoder through TorchCodec (an FFmpeg build may list ``h264_nvenc`` on a machine
without an NVIDIA driver or GPU; only an encode shows it works).
"""
from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torchcodec.encoders import Encoder

from vdp.errors import EncodeError

CPU_CODECS = {"h264": "libx264", "hevc": "libx265"}
NVENC_CODECS = {"h264": "h264_nvenc", "hevc": "hevc_nvenc"}
EncoderChoice = Literal["auto", "cpu", "nvenc"]
NVENC_PRESET = "p1"  # NVENC's fastest preset (p1..p7); quality set by constant QP-like `cq`

_PROBED: dict[str, str | None] = {}  # codec -> None (works) or why NVENC cannot be used
_LOCK = threading.Lock()


@dataclass(frozen=True)
class EncoderSettings:
    """What to hand TorchCodec's `add_video` for one stream, and why that encoder was chosen."""

    name: str  # e.g. "libx264" or "h264_nvenc"
    crf: int | None
    preset: str
    options: dict[str, Any] = field(default_factory=dict)
    fallback_reason: str | None = None  # set when NVENC was wanted ("auto") but is unusable


def nvenc_problem(codec: str) -> str | None:
    """None if NVENC encodes `codec` here, else the reason it does not (probed once, cached)."""
    with _LOCK:
        if codec not in _PROBED:
            _PROBED[codec] = _probe(codec)
        return _PROBED[codec]


def _probe(codec: str) -> str | None:
    with tempfile.TemporaryDirectory(prefix="vdp_nvenc_probe_") as d:
        try:
            enc = Encoder()
            stream = enc.add_video(height=256, width=256, frame_rate=24.0, device="cpu",
                                   codec=NVENC_CODECS[codec], pixel_format="yuv420p",
                                   preset=NVENC_PRESET)
            enc.open_file(os.path.join(d, "probe.mp4"))
            stream.add_frames(torch.zeros((2, 3, 256, 256), dtype=torch.uint8))
            enc.close()
        except Exception as exc:  # any failure means: not usable on this machine
            return f"{NVENC_CODECS[codec]} failed to encode a test frame: {str(exc)[-300:]}"
    return None


def choose_encoder(codec: str, encoder: EncoderChoice, *, crf: int, preset: str,
                   threads: int | None) -> EncoderSettings:
    """The encoder for an MP4 stream.

    Args:
        codec: ``"h264"`` or ``"hevc"``.
        encoder: ``"auto"`` (NVENC if it works here, else the CPU encoder), ``"cpu"``, or
            ``"nvenc"`` (required: no fallback).
        crf: Quality (x264/x265 crf; NVENC's ``cq``).
        preset: x264/x265 preset (NVENC uses its fastest preset).
        threads: CPU encoder threads (None: the encoder's default).

    Raises:
        ValueError: Unknown codec or encoder.
        EncodeError: ``"nvenc"`` asked for where it does not work.
    """
    if codec not in CPU_CODECS:
        raise ValueError(f"codec must be one of {sorted(CPU_CODECS)}, got {codec!r}")
    if encoder not in ("auto", "cpu", "nvenc"):
        raise ValueError(f"encoder must be 'auto', 'cpu' or 'nvenc', got {encoder!r}")
    reason = None
    if encoder != "cpu":
        reason = nvenc_problem(codec)
        if reason is None:
            return EncoderSettings(NVENC_CODECS[codec], None, NVENC_PRESET,
                                   {"rc": "vbr", "cq": str(crf), "b": "0"})
        if encoder == "nvenc":
            raise EncodeError(f"encoder 'nvenc' was asked for but cannot be used here: {reason}")
    options: dict[str, Any] = {}
    if threads is not None:
        options["threads"] = str(threads)
    if codec == "hevc":
        options["x265-params"] = "log-level=error"
    return EncoderSettings(CPU_CODECS[codec], crf, preset, options, reason)
