"""ffmpeg-side looks at a stream that TorchCodec does not give: packet timestamps, and a
decodable copy of a raw elementary stream."""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import struct
import tempfile
from pathlib import Path

from vdp.errors import DecodeError
from vdp.io._ffmpeg import ffmpeg_exe, run_ffmpeg

REMUX_DIR = Path(tempfile.gettempdir()) / "vdp-remux"


def cached_copy(path: str, salt: str = "", suffix: str = ".mkv") -> Path:
    """Where a converted copy of `path` is cached: keyed by its path, size and modification
    time, and `salt` (what the conversion does)."""
    st = os.stat(path)
    key = hashlib.sha256(f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}{salt}".encode())
    REMUX_DIR.mkdir(parents=True, exist_ok=True)
    return REMUX_DIR / f"{key.hexdigest()[:24]}{suffix}"
TIMING_PACKETS = 2000
DEFAULT_TIMEOUT_S = 120.0


def timestamp_rate(path: str, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                   packets: int = TIMING_PACKETS, stream_index: int | None = None) -> tuple[float, float]:
    """Frame rate from a video stream's packet timestamps (no decoding): stream `stream_index`
    (absolute), or the first video stream.

    Reads the first `packets` packets' presentation times with ffmpeg (``-c copy -f framecrc``).

    Returns:
        (the rate from the frame durations: the positive differences of the sorted timestamps
        within a factor 1.5 of their median, averaged (so a 1 ms time base rounding 33.37 ms to
        33 or 34 still gives 29.97), or the nominal rate when it agrees within 0.5%; 0.0 when no
        two timestamps differ. The stream's nominal rate as ffmpeg reports it, 0.0 when none.)
    """
    chosen = "0:v:0" if stream_index is None else f"0:{stream_index}"
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", path, "-map", chosen,
                           "-c", "copy", "-frames:v", str(packets), "-f", "framecrc", "-"],
                          capture_output=True, text=True, timeout=timeout_s, check=False)
    nominal = 0.0
    line = r"\d+" if stream_index is None else str(stream_index)
    if m := re.search(rf"Stream #\d+:{line}\b.*?: Video: .*?(\d+(?:\.\d+)?)(k?) (?:fps|tbr)", proc.stderr):
        nominal = float(m.group(1)) * (1000 if m.group(2) else 1)
    tb = re.search(r"^#tb 0: (\d+)/(\d+)$", proc.stdout, re.M)
    if tb is None:
        return 0.0, nominal
    unit = int(tb.group(1)) / int(tb.group(2))
    pts = sorted(int(line.split(",")[2]) for line in proc.stdout.splitlines()
                 if line.startswith("0,") and line.split(",")[2].strip().lstrip("-").isdigit())
    steps = sorted(b - a for a, b in zip(pts, pts[1:]) if b > a)
    if not steps:
        return 0.0, nominal
    median = steps[len(steps) // 2]
    inliers = [d for d in steps if median / 1.5 <= d <= median * 1.5]
    rate = len(inliers) / (sum(inliers) * unit)
    if nominal and abs(rate / nominal - 1) <= 0.005:
        return nominal, nominal
    return rate, nominal


def remux_elementary_stream(path: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[str, str]:
    """A lossless FFV1 Matroska copy of the raw elementary stream `path`, made once and cached.

    The cache key is the file's absolute path, size and modification time; the copy is written
    to a temporary name and renamed, so concurrent openers never see a partial file.

    Returns:
        (path of the copy, the source's codec name as ffmpeg reports it).

    Raises:
        DecodeError: ffmpeg could not read the stream.
    """
    info = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", path],
                          capture_output=True, text=True, timeout=timeout_s, check=False).stderr
    codec = m.group(1) if (m := re.search(r"Stream #0:0.*?: Video: (\w+)", info)) else "video"
    target = cached_copy(path)
    if not target.is_file():
        tmp = target.with_name(f"{target.stem}.{os.getpid()}.{id(target)}.tmp.mkv")
        run_ffmpeg(["-y", "-i", path, "-map", "0:v:0", "-c:v", "ffv1", "-level", "3",
                    "-threads", "0", str(tmp)], timeout_s=timeout_s,
                   what=f"converting raw stream {path}", error=DecodeError)
        os.replace(tmp, target)
    return str(target), codec


_CONTAINERS = {b"moov", b"trak", b"mdia"}


def _atoms(f, start: int, end: int):
    """(type, payload start, payload end) of the ISO-BMFF boxes in ``[start, end)``."""
    pos = start
    while pos + 8 <= end:
        f.seek(pos)
        head = f.read(16)
        if len(head) < 8:
            return
        size, kind = struct.unpack(">I4s", head[:8])
        body = pos + 8
        if size == 1 and len(head) == 16:
            size, body = struct.unpack(">Q", head[8:16])[0], pos + 16
        elif size == 0:
            size = end - pos
        if size < body - pos:
            return
        yield kind, body, min(pos + size, end)
        pos += size


def video_track_reflected(path: str, stream_index: int | None = None) -> bool:
    """Whether a video track of an MP4/MOV has a mirroring display matrix (``tkhd`` matrix
    determinant < 0, e.g. ``ffmpeg -display_hflip``): the track of stream `stream_index`
    (absolute: an MP4's streams are its tracks in order), or the first video track. False for
    other containers.

    TorchCodec applies the matrix's rotation but not its reflection, so the caller mirrors the
    frames horizontally after the rotation, as ffmpeg's autorotation does.
    """
    try:
        with open(path, "rb") as f:
            end = os.fstat(f.fileno()).st_size
            moov = next((a for a in _atoms(f, 0, end) if a[0] == b"moov"), None)
            if moov is None:
                return False
            traks = [(start, stop) for kind, start, stop in _atoms(f, moov[1], moov[2]) if kind == b"trak"]
            if stream_index is not None:
                traks = traks[stream_index:stream_index + 1]
            for start, stop in traks:
                boxes = {k: (s, e) for k, s, e in _atoms(f, start, stop)}
                mdia = boxes.get(b"mdia")
                tkhd = boxes.get(b"tkhd")
                if mdia is None or tkhd is None:
                    continue
                hdlr = next(((s, e) for k, s, e in _atoms(f, *mdia) if k == b"hdlr"), None)
                if hdlr is None:
                    continue
                f.seek(hdlr[0] + 8)
                if f.read(4) != b"vide":
                    continue
                f.seek(tkhd[0])
                version = f.read(1)[0]
                f.seek(tkhd[0] + (52 if version == 1 else 40))  # the 3x3 matrix
                a, b, _, c, d = struct.unpack(">5i", f.read(20))
                return a * d - b * c < 0
    except (OSError, struct.error, IndexError):
        return False
    return False
