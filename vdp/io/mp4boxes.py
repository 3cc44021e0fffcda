"""Reading ISO-BMFF (MP4) boxes and adding boxes to a video sample entry after encoding.

Used to tag VR180 videos with Spherical Video V2 metadata (``st3d`` and ``sv3d`` inside the
``avc1``/``hvc1`` sample entry), which encoders do not write. Adding bytes to ``moov`` shifts
the media data when ``moov`` comes first (fast start): chunk offsets (``stco``/``co64``) are
moved by the same amount.
"""
from __future__ import annotations

import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

from vdp.errors import EncodeError

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"udta"}
VIDEO_ENTRIES = {b"avc1", b"avc3", b"hvc1", b"hev1"}
VISUAL_SAMPLE_ENTRY_HEADER = 86  # box header + fixed fields of a VisualSampleEntry


@dataclass(frozen=True)
class Box:
    """One box: its type and where its payload lies in the buffer it was read from."""

    type: bytes
    start: int      # offset of the header
    payload: int    # offset of the payload
    end: int        # offset just past the box


def iter_boxes(buf: bytes, start: int = 0, end: int | None = None):
    """The boxes one after another in ``buf[start:end]``."""
    end = len(buf) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", buf, pos)
        header = 8
        if size == 1:
            size = struct.unpack_from(">Q", buf, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise EncodeError(f"malformed MP4 box {kind!r} at offset {pos} (size {size})")
        yield Box(kind, pos, pos + header, pos + size)
        pos += size


def box(kind: bytes, payload: bytes) -> bytes:
    """A box of `kind` holding `payload`."""
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def full_box(kind: bytes, payload: bytes, version: int = 0, flags: int = 0) -> bytes:
    """A full box (version and flags before the payload)."""
    return box(kind, struct.pack(">I", (version << 24) | flags) + payload)


def _top_level(path: Path) -> list[tuple[bytes, int, int]]:
    """``(type, offset, size)`` of the file's top-level boxes, reading only their headers."""
    out, size_total = [], path.stat().st_size
    with open(path, "rb") as f:
        pos = 0
        while pos + 8 <= size_total:
            f.seek(pos)
            size, kind = struct.unpack(">I4s", f.read(8))
            if size == 1:
                size = struct.unpack(">Q", f.read(8))[0]
            elif size == 0:
                size = size_total - pos
            if size < 8:
                raise EncodeError(f"{path}: malformed top-level box {kind!r} at offset {pos}")
            out.append((kind, pos, size))
            pos += size
    return out


def _rebuild(buf: bytes, start: int, end: int, extra: bytes, shift: int) -> bytes:
    parts = []
    for b in iter_boxes(buf, start, end):
        head = buf[b.start:b.payload]
        if b.type in CONTAINERS:
            body = _rebuild(buf, b.payload, b.end, extra, shift)
        elif b.type == b"stsd":
            body = bytearray(buf[b.payload:b.payload + 8])
            for e in iter_boxes(buf, b.payload + 8, b.end):
                entry = buf[e.start:e.end]
                if e.type in VIDEO_ENTRIES and e.payload - e.start == 8:
                    entry = struct.pack(">I", len(entry) + len(extra)) + entry[4:] + extra
                body += entry
            body = bytes(body)
        elif b.type in (b"stco", b"co64") and shift:
            body = bytearray(buf[b.payload:b.end])
            count = struct.unpack_from(">I", body, 4)[0]
            fmt, width = (">I", 4) if b.type == b"stco" else (">Q", 8)
            for i in range(count):
                off = 8 + i * width
                struct.pack_into(fmt, body, off, struct.unpack_from(fmt, body, off)[0] + shift)
            body = bytes(body)
        else:
            body = buf[b.payload:b.end]
        if len(head) == 16:
            head = struct.pack(">I4sQ", 1, b.type, 16 + len(body))
        else:
            head = struct.pack(">I4s", 8 + len(body), b.type)
        parts.append(head + body)
    return b"".join(parts)


def add_to_video_sample_entry(path: str | os.PathLike[str], extra: bytes) -> None:
    """Append `extra` (whole boxes) to every video sample entry of the MP4 at `path`, in place.

    Raises:
        EncodeError: The file has no ``moov`` or no H.264/HEVC sample entry.
    """
    path = Path(path)
    tops = _top_level(path)
    moov = next(((o, s) for k, o, s in tops if k == b"moov"), None)
    if moov is None:
        raise EncodeError(f"{path}: no moov box")
    with open(path, "rb") as f:
        f.seek(moov[0])
        moov_bytes = f.read(moov[1])
    entries = _count_video_entries(moov_bytes)
    if entries == 0:
        raise EncodeError(f"{path}: no H.264/HEVC video sample entry to tag")
    media_after = any(k == b"mdat" and o > moov[0] for k, o, _ in tops)
    shift = len(extra) * entries if media_after else 0
    new_moov = _rebuild(moov_bytes, 0, len(moov_bytes), extra, shift)
    tmp = path.with_name(f".{path.name}.boxes.tmp")
    try:
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(_Limited(src, moov[0]), dst)
            dst.write(new_moov)
            src.seek(moov[0] + moov[1])
            shutil.copyfileobj(src, dst)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _count_video_entries(moov: bytes) -> int:
    n = 0
    for b in iter_boxes(moov):
        if b.type in CONTAINERS:
            n += _count_video_entries(moov[b.payload:b.end])
        elif b.type == b"stsd":
            n += sum(e.type in VIDEO_ENTRIES for e in iter_boxes(moov, b.payload + 8, b.end))
    return n


class _Limited:
    """A file object reading at most `limit` bytes from the start."""

    def __init__(self, f, limit: int) -> None:
        self.f, self.left = f, limit
        f.seek(0)

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n)
        self.left -= len(data)
        return data


def spherical_v2_boxes(stereo_mode: int = 2, *, bounds: tuple[float, float, float, float] = (0, 0, 0.25, 0.25),
                       source: str = "vdp") -> bytes:
    """``st3d`` + ``sv3d`` boxes of Google's Spherical Video V2 RFC.

    Args:
        stereo_mode: 0 mono, 1 top-bottom, 2 left-right.
        bounds: Equirectangular projection bounds (top, bottom, left, right) as fractions of
            the full sphere cropped away; ``(0, 0, .25, .25)`` is 180 degrees wide, 180 high.
        source: The metadata source string (``svhd``).
    """
    st3d = full_box(b"st3d", bytes([stereo_mode]))
    svhd = full_box(b"svhd", source.encode() + b"\0")
    prhd = full_box(b"prhd", struct.pack(">iii", 0, 0, 0))
    fixed = [min(0xFFFFFFFF, round(b * 2 ** 32)) for b in bounds]
    equi = full_box(b"equi", struct.pack(">IIII", *fixed))
    return st3d + box(b"sv3d", svhd + box(b"proj", prhd + equi))
