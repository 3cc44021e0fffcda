"""2D track input of `vdp lift`: vdp's JSON format and MOT-challenge CSV.

JSON (coordinates in pixels of the source video, frames 0-based)::

    {
      "image_size": [1920, 1080],          # optional: size the coordinates refer to
      "detections": [
        {"frame": 0, "id": 7, "box": [x1, y1, x2, y2]},    # a box (corners)
        {"frame": 0, "id": "ball", "point": [u, v]}       # or a point
      ]
    }

MOT-challenge CSV (``det.txt``/``gt.txt``, frames 1-based)::

    frame, id, bb_left, bb_top, bb_width, bb_height, conf, x, y, z

Only the first six columns are read; ``frame - 1`` is the 0-based frame.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from vdp.errors import VdpError


class TracksError(VdpError):
    """A tracks file cannot be read; the message names the file, line or entry and the problem."""


@dataclass(frozen=True)
class Detection:
    """One tracked object in one frame: a box ``(x1, y1, x2, y2)`` or a point (``box`` None)."""

    frame: int
    id: str
    u: float
    v: float
    box: tuple[float, float, float, float] | None = None


def read_tracks(path: str | Path) -> tuple[list[Detection], tuple[int, int] | None]:
    """Detections of a JSON or MOT CSV file (by content: JSON starts with ``{``) and the image size
    the JSON says its coordinates refer to (None for MOT or when absent)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise TracksError(f"cannot read tracks file {path}: {exc.strerror}") from None
    if text.lstrip().startswith("{"):
        return _read_json(path, text)
    return _read_mot(path, text), None


def _read_json(path: Path, text: str) -> tuple[list[Detection], tuple[int, int] | None]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TracksError(f"{path} is not valid JSON: {exc}") from None
    dets = data.get("detections")
    if not isinstance(dets, list):
        raise TracksError(f"{path}: expected a 'detections' list (see `vdp lift --help`)")
    size = data.get("image_size")
    if size is not None and not (isinstance(size, list) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size)):
        raise TracksError(f"{path}: image_size must be [width, height] in pixels, got {size!r}")
    out = []
    for n, d in enumerate(dets):
        where = f"{path}: detections[{n}]"
        if not isinstance(d, dict) or not isinstance(d.get("frame"), int) or d["frame"] < 0:
            raise TracksError(f"{where}: needs an integer 'frame' >= 0")
        if "id" not in d:
            raise TracksError(f"{where}: needs an 'id'")
        if ("box" in d) == ("point" in d):
            raise TracksError(f"{where}: give exactly one of 'box' [x1, y1, x2, y2] or 'point' [u, v]")
        out.append(_detection(where, d["frame"], str(d["id"]), d.get("box"), d.get("point")))
    return out, (tuple(size) if size else None)


def _detection(where: str, frame: int, ident: str, box, point) -> Detection:
    values = box if box is not None else point
    want = 4 if box is not None else 2
    if not (isinstance(values, list) and len(values) == want and all(isinstance(x, (int, float)) for x in values)):
        raise TracksError(f"{where}: {'box' if box is not None else 'point'} must be {want} numbers, got {values!r}")
    if box is not None:
        x1, y1, x2, y2 = map(float, box)
        if not (x2 > x1 and y2 > y1):
            raise TracksError(f"{where}: box needs x2 > x1 and y2 > y1, got {box}")
        return Detection(frame, ident, (x1 + x2) / 2, (y1 + y2) / 2, (x1, y1, x2, y2))
    return Detection(frame, ident, float(point[0]), float(point[1]))


def _read_mot(path: Path, text: str) -> list[Detection]:
    out = []
    for n, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        try:
            frame, ident = int(float(row[0])), str(int(float(row[1])))
            left, top, width, height = (float(x) for x in row[2:6])
        except (ValueError, IndexError):
            raise TracksError(f"{path}: line {n} is not MOT CSV (frame, id, left, top, width, height, ...): "
                              f"{','.join(row)[:80]!r}") from None
        if frame < 1:
            raise TracksError(f"{path}: line {n}: MOT frames start at 1, got {frame}")
        if width <= 0 or height <= 0:
            raise TracksError(f"{path}: line {n}: box width and height must be > 0")
        out.append(_detection(f"{path}: line {n}", frame - 1, ident,
                              [left, top, left + width, top + height], None))
    if not out:
        raise TracksError(f"{path}: no detections")
    return out
