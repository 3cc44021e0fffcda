"""Outputs written in parts, one per chunk, where the chunks ran, and joined once the job succeeds.

A part is what one chunk's writer leaves for one output (`vdp.engine.chunk_writer`): for a
frame folder (``parts="frames"`` in the catalog), a folder holding that chunk's frames under
their final names, plus the output's ``<name>.json`` sidecar if it has one; for a video
(``parts="video"``), a file holding that chunk's frames, encoded alone, without audio.

`join_parts` makes the final output from its parts: frame files are moved (renames, no copy)
and the sidecars merged (counts such as ``clipped_pixels`` summed); video parts are
concatenated without re-encoding (FFmpeg's concat demuxer, ``-c copy``: each part starts with a
key frame and timestamps follow on) and the source's audio is muxed once. The result appears
atomically under its final name.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from vdp.errors import EncodeError, VdpError


class PartsError(VdpError):
    """The parts of an output are missing or cannot be joined."""


#: Sidecar fields that count something per frame: summed over parts.
COUNTS = ("clipped_pixels",)


def join_parts(kind: str, parts: list[Path], path: Path, *, fps: float, frames: int,
               audio_from: str | None, timeout_s: float, audio_stream: int | None = None) -> Path:
    """Join an output's `parts` (chunk order) into `path`.

    Args:
        kind: ``frames`` or ``video`` (the output's catalog entry).
        parts: One per chunk, in frame order.
        path: The final file or folder.
        fps: Frame rate (to cut the audio to the video's duration).
        frames: Frames of the whole output.
        audio_from: The source, when it has audio to mux into a video.
        timeout_s: Deadline of each FFmpeg run.
        audio_stream: Absolute index of the one audio track of `audio_from` to mux (None:
            ffmpeg's pick, see `vdp.io.streams`).

    Raises:
        PartsError: A part is missing or FFmpeg failed.
    """
    missing = [os.fspath(p) for p in parts if not p.exists()]
    if missing:
        raise PartsError(f"{path.name}: parts written by the workers are missing: {missing[:3]} "
                         f"(is the output folder on storage every node writes at the same path?)")
    if kind == "frames":
        return _join_frames(parts, path)
    if kind == "video":
        return _join_video(parts, path, fps=fps, frames=frames, audio_from=audio_from, timeout_s=timeout_s,
                           audio_stream=audio_stream)
    raise PartsError(f"{path.name}: output parts of kind {kind!r} cannot be joined")


def _join_frames(parts: list[Path], path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.join")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for part in parts:
        for f in sorted(part.iterdir()):
            os.replace(f, tmp / f.name)
    sidecars = [p.with_name(p.name + ".json") for p in parts]
    if sidecars[0].exists():
        merged = json.loads(sidecars[0].read_text())
        for extra in sidecars[1:]:
            data = json.loads(extra.read_text()) if extra.exists() else {}
            for key in COUNTS:
                if key in merged and key in data:
                    merged[key] += data[key]
        side = path.with_name(path.name + ".json")
        side_tmp = side.with_name(f".{side.name}.tmp")
        side_tmp.write_text(json.dumps(merged, indent=2))
        os.replace(side_tmp, side)
    if path.exists():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    os.replace(tmp, path)
    return path


def _join_video(parts: list[Path], path: Path, *, fps: float, frames: int, audio_from: str | None,
                timeout_s: float, audio_stream: int | None = None) -> Path:
    from vdp.io._ffmpeg import run_ffmpeg
    from vdp.io.streams import audio_map

    listing = path.with_name(f".{path.name}.parts.txt")
    listing.write_text("".join(f"file '{_quoted(p)}'\n" for p in parts))
    fmt = {".webm": "webm", ".mov": "mov"}.get(path.suffix.lower(), "mp4")
    tmp = path.with_name(f".{path.name}.join{path.suffix}")
    base = ["-y", "-f", "concat", "-safe", "0", "-i", os.fspath(listing)]
    if audio_from is not None:
        base += ["-i", audio_from, "-map", "0:v:0", "-map", audio_map(audio_from, audio_stream, timeout_s),
                 "-t", f"{frames / fps:.6f}"]
    base += ["-c:v", "copy"]
    if fmt == "mp4":
        base += ["-movflags", "+faststart"]
        if _is_hevc(parts[0]):
            base += ["-tag:v", "hvc1"]
    if fmt == "webm":
        base += ["-fflags", "+bitexact"]
    what = f"joining {len(parts)} parts of {path.name}"
    try:
        try:
            run_ffmpeg([*base, "-c:a", "copy", "-f", fmt, os.fspath(tmp)], timeout_s=timeout_s, what=what)
        except EncodeError:
            if audio_from is None:
                raise
            audio = {"webm": "libopus", "mov": "pcm_s16le"}.get(fmt, "aac")
            run_ffmpeg([*base, "-c:a", audio, "-f", fmt, os.fspath(tmp)], timeout_s=timeout_s,
                       what=f"{what} (audio as {audio})")
        os.replace(tmp, path)
    except EncodeError as exc:
        raise PartsError(str(exc)) from None
    finally:
        listing.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return path


def _quoted(p: Path) -> str:
    return os.path.abspath(p).replace("'", "'\\''")


def _is_hevc(part: Path) -> bool:
    """Whether the part's sample entry is HEVC (the moov box is at one end of the file)."""
    with open(part, "rb") as f:
        ends = f.read(1 << 16)
        f.seek(max(0, part.stat().st_size - (1 << 16)))
        ends += f.read()
    return b"hvc1" in ends or b"hev1" in ends
