"""`vdp probe` without torch: the fields of `vdp.io.probe` from ffprobe's packet listing.

`vdp.io.probe` opens the file with TorchCodec, whose import alone takes ~3 s (torch). The
metadata it reports needs no decoding: TorchCodec's exact-mode scan reads every packet of the
stream (no decoding) and counts those FFmpeg does not mark as discarded. ``ffprobe
-show_packets`` lists the same packets with the same library (Debian's FFmpeg, which TorchCodec
links), so this module computes the same numbers the same way:

* ``num_frames``: packets of the stream without the discard flag (``D``);
* ``duration_seconds``: max(pts + duration) - min(pts) in seconds, pts falling back to dts;
* ``fps``: as `vdp.io.decode.VideoSource` (frames / duration when the stream declares a rate
  (``r_frame_rate``), else `vdp.io._streams.timestamp_rate`);
* ``width``/``height`` after the display matrix's rotation, the rotation from that matrix;
* codec, pixel format, declared frame count, the streams used (`vdp.io.streams`), the colour
  and tone mapping (`vdp.io.colour`, as the decoder reads them).

Anything unusual (no ffprobe, a missing or broken file, no video stream, a raw elementary
stream, a packet without timestamps, no frames) returns None and the caller uses
`vdp.io.probe`, so errors and warnings stay exactly the library's.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from typing import Any

from vdp.io.colour import source_colour
from vdp.io.source_facts import (DEFAULT_TIMEOUT_S, bit_depth_of, frame_rate, short_count_warning,
                                 tone_mapping_of)
from vdp.io.streams import AudioChoice, StreamChoice, select_streams
#: FFmpeg demuxers of raw elementary streams (`vdp.io.decode` converts those first).
RAW_FORMATS = frozenset({"h264", "hevc", "vvc", "mpegvideo", "m4v", "obu", "cavsvideo", "dirac",
                         "avs2", "avs3", "vc1", "rawvideo"})
_ENTRIES = ("stream=codec_name,width,height,pix_fmt,r_frame_rate,nb_frames,time_base:"
            "stream_side_data=displaymatrix:packet=pts,dts,duration,flags:format=format_name")


def _ratio(text: str | None) -> float:
    num, _, den = (text or "0/0").partition("/")
    try:
        return int(num) / int(den) if int(den) else 0.0
    except ValueError:
        return 0.0


def display_rotation(matrix_text: str) -> float | None:
    """The rotation of a display matrix as ffprobe prints it (degrees counter-clockwise, as
    libavutil's ``av_display_rotation_get``; None when the matrix is degenerate)."""
    values = [int(v) for line in matrix_text.strip().splitlines() for v in line.split(":")[1].split()]
    if len(values) != 9:
        return None
    m = [v / 65536 for v in values]
    scale0, scale1 = math.hypot(m[0], m[3]), math.hypot(m[1], m[4])
    if scale0 == 0.0 or scale1 == 0.0:
        return None
    return -(math.atan2(m[1] / scale1, m[0] / scale0) * 180 / math.pi)


def _ffprobe(path: str, index: int, timeout_s: float) -> dict[str, Any] | None:
    exe = shutil.which("ffprobe")
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, "-v", "error", "-of", "json=compact=1", "-select_streams", str(index),
                               "-show_entries", _ENTRIES, "-show_packets", path],
                              capture_output=True, text=True, timeout=timeout_s, check=False)
        return json.loads(proc.stdout) if proc.returncode == 0 else None
    except (subprocess.TimeoutExpired, json.JSONDecodeError, OSError):
        return None


def quick_probe(path: str | os.PathLike[str], *, timeout_s: float = DEFAULT_TIMEOUT_S, hdr: str = "tonemap",
                video_stream: int | None = None, audio_stream: AudioChoice = None) -> dict[str, Any] | None:
    """``vdp.io.probe(path, ...).to_dict()`` computed without torch, or None when only the
    decoder can answer (see the module docstring).

    Raises:
        StreamSelectionError: A chosen stream is not in the file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return None
    choice = select_streams(path, video_stream, audio_stream, timeout_s=timeout_s)
    if choice is None:
        return None
    data = _ffprobe(path, choice.video.index, timeout_s)
    if data is None or not data.get("streams"):
        return None
    if data.get("format", {}).get("format_name", "") in RAW_FORMATS:
        return None
    return _info(path, data, choice, timeout_s, hdr)


def _info(path: str, data: dict[str, Any], choice: StreamChoice, timeout_s: float,
          hdr: str) -> dict[str, Any] | None:
    stream = data["streams"][0]
    num, _, den = stream.get("time_base", "0/0").partition("/")
    tb_num, tb_den = int(num or 0), int(den or 0)
    begin = end = None
    frames = 0
    for p in data.get("packets", []):
        if "D" in p.get("flags", ""):
            continue
        pts = p.get("pts", p.get("dts"))
        if not isinstance(pts, int):
            return None  # no timestamps: the decoder's own handling
        frames += 1
        begin = pts if begin is None else min(begin, pts)
        stop = pts + int(p.get("duration", 0) or 0)
        end = stop if end is None else max(end, stop)
    if frames == 0 or not tb_num or not tb_den:
        return None
    # seconds as TorchCodec's ptsToSeconds computes them: double(pts) * num / den
    duration = float(end) * tb_num / tb_den - float(begin) * tb_num / tb_den
    header = _ratio(stream.get("r_frame_rate"))
    header = header if header > 0 else 0.0
    scan = frames / duration if duration != 0.0 else header
    declared = int(stream["nb_frames"]) if str(stream.get("nb_frames", "")).isdigit() else None
    declared = declared if declared else None
    name = os.path.basename(path)
    colour = source_colour(path, timeout_s=timeout_s, stream_index=choice.video.index)
    tone_mapping, tone_warning = tone_mapping_of(name, colour.transfer, colour.is_hdr, hdr)
    fps, rate_warning = frame_rate(path, name, scan, header, stream_index=choice.video.index,
                                   timeout_s=timeout_s)
    warnings = [w for w in (short_count_warning(name, declared, frames), tone_warning, rate_warning) if w]
    rotation = None
    for side in stream.get("side_data_list", []):
        if "displaymatrix" in side:
            rotation = display_rotation(side["displaymatrix"])
    width, height = int(stream.get("width", 0)), int(stream.get("height", 0))
    if rotation is not None and round(rotation / 90) * 90 in (90, -90):
        width, height = height, width
    pix_fmt = stream.get("pix_fmt", "") or ""
    audio = choice.audio
    return {"path": path, "num_frames": frames, "fps": fps, "duration_seconds": duration,
            "width": width, "height": height, "codec": stream.get("codec_name", ""),
            "pixel_format": pix_fmt, "rotation_degrees": int(round(rotation or 0)),
            "has_audio": audio is not None, "bit_depth": bit_depth_of(pix_fmt), "declared_frames": declared,
            "warnings": warnings, "colour_primaries": colour.primaries, "colour_transfer": colour.transfer,
            "colour_matrix": colour.matrix, "colour_range": colour.range, "tone_mapping": tone_mapping,
            "video_stream": choice.video.index,
            "audio_stream": None if audio is None else audio.index, "streams_used": choice.to_dict()}
