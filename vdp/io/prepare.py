"""Trimming, frame-rate conversion and downscaling of a job's input before it runs.

When a spec has a `clip` section, the input is first cut to ``[start_s, end_s)``, resampled to
``target_fps`` (frames dropped or repeated, as players do) and scaled so its longer side is at
most ``max_res``, into a near-lossless H.264 intermediate (crf 12, display orientation, audio
cut alike as AAC) inside the job's work folder. The job then runs on that file, so every stage,
output and the audio agree on the same frames; outputs keep the original input's name.
"""
from __future__ import annotations

import os
from pathlib import Path

from vdp.errors import DecodeError
from vdp.io._ffmpeg import run_ffmpeg

INTERMEDIATE_CRF = 12


def clip_filters(target_fps: float | None, max_res: int | None) -> list[str]:
    """ffmpeg video filters of a clip section (fps first, then a scale keeping the aspect, even)."""
    filters = []
    if target_fps:
        filters.append(f"fps={target_fps!r}")
    if max_res:
        filters.append(f"scale='if(gte(iw,ih),min(iw,{max_res}),-2)':'if(gte(iw,ih),-2,min(ih,{max_res}))'")
    return filters


def prepare_input(src: str | os.PathLike[str], dest: Path, *, start_s: float = 0.0, end_s: float | None = None,
                  target_fps: float | None = None, max_res: int | None = None,
                  has_audio: bool = True, timeout_s: float = 3600.0, video_stream: int | None = None,
                  audio_stream: int | None = None) -> Path:
    """Write the trimmed/resampled/downscaled intermediate of `src` to `dest` (atomically).

    `video_stream`/`audio_stream`: absolute indices of the streams to keep (None: the first
    video stream, the first audio track).

    Raises:
        DecodeError: ffmpeg failed, or nothing of the input lies in the range.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp.mp4")
    args = ["-y"]
    if start_s > 0:
        args += ["-ss", f"{start_s:.6f}"]
    args += ["-i", os.fspath(src)]
    if end_s is not None:
        args += ["-t", f"{end_s - start_s:.6f}"]
    video = "0:v:0" if video_stream is None else f"0:{video_stream}"
    audio = "0:a:0?" if audio_stream is None else f"0:{audio_stream}"
    args += ["-map", video] + (["-map", audio, "-c:a", "aac", "-b:a", "192k"] if has_audio else [])
    vf = clip_filters(target_fps, max_res)
    if vf:
        args += ["-vf", ",".join(vf)]
    args += ["-c:v", "libx264", "-crf", str(INTERMEDIATE_CRF), "-preset", "veryfast", "-pix_fmt", "yuv420p",
             "-fps_mode", "cfr" if target_fps else "passthrough", "-f", "mp4", os.fspath(tmp)]
    try:
        run_ffmpeg(args, timeout_s=timeout_s, what=f"trimming/resampling {src}", error=DecodeError)
        if not tmp.is_file() or tmp.stat().st_size < 1024:
            raise DecodeError(f"{src}: no frames between {start_s} s and {end_s} s")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
