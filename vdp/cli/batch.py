"""`vdp run FOLDER` or `vdp run "clips/*.mp4"`: one job per video, one report each, and a summary.

Each video runs into ``OUT/<stem>/`` (its outputs, named after it, plus its ``spec.json`` and
``report.json``); ``OUT/batch_summary.json`` lists every video with its status, frames, time,
outputs and error. A failed video does not stop the batch; the exit code is 1 when any failed.
"""
from __future__ import annotations

import glob
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from vdp.errors import SpecError, VdpError

VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mts", ".m2ts", ".ts", ".wmv", ".flv"}
SUMMARY_NAME = "batch_summary.json"


def expand_inputs(arg: str) -> list[Path] | None:
    """The videos a folder or glob names (sorted), or None when `arg` is one file.

    Raises:
        SpecError: The folder or glob matches no video.
    """
    path = Path(arg)
    if path.is_dir():
        videos = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
        what = f"folder {arg}"
    elif any(c in arg for c in "*?[") and not path.exists():
        videos = sorted(Path(p) for p in glob.glob(arg) if Path(p).is_file())
        what = f"pattern {arg!r}"
    else:
        return None
    if not videos:
        raise SpecError(f"{what} matches no video (extensions: {', '.join(sorted(VIDEO_EXTENSIONS))})")
    return videos


def job_folders(videos: list[Path], root: Path) -> list[Path]:
    """``root/<stem>`` per video; stems shared by several videos get their extension appended."""
    stems = [v.stem for v in videos]
    return [root / (v.stem if stems.count(v.stem) == 1 else f"{v.stem}_{v.suffix.lstrip('.')}")
            for v in videos]


def run_batch(videos: list[Path], root: Path, make_spec: Callable[[str], Any], *, local: bool,
              progress_factory: Callable[[], Any] | None = None) -> dict:
    """Run one job per video into ``root/<stem>/`` and write ``root/batch_summary.json``.

    Args:
        videos: Input files.
        root: Batch output folder.
        make_spec: Builds the (validated) JobSpec of one input path.
        local: Run stages in this process instead of Ray.
        progress_factory: A fresh progress callback per job (or None).

    Returns:
        The summary (also written to ``batch_summary.json``).
    """
    from vdp.engine.job import run_job
    from vdp.naming import make_output_folder

    make_output_folder(root)
    rows, t0 = [], time.monotonic()
    for video, folder in zip(videos, job_folders(videos, root)):
        row: dict[str, Any] = {"input": str(video), "out_dir": os.path.relpath(folder, root)}
        print(f"vdp: [{len(rows) + 1}/{len(videos)}] {video} -> {folder}/", file=sys.stderr)
        try:
            report = run_job(make_spec(str(video)), folder, local=local,
                             progress=progress_factory() if progress_factory else None)
            row.update(status=report.status, frames=report.frames, wall_seconds=report.wall_seconds,
                       outputs=[f"{row['out_dir']}/{o}" for o in report.outputs], error=None)
        except VdpError as exc:
            row.update(status="failed", frames=0, wall_seconds=None, outputs=[],
                       error=f"{type(exc).__name__}: {exc}")
            print(f"vdp: {video}: {row['error']}", file=sys.stderr)
        rows.append(row)
    summary = {"videos": len(rows), "succeeded": sum(r["status"] == "succeeded" for r in rows),
               "failed": sum(r["status"] != "succeeded" for r in rows),
               "wall_seconds": round(time.monotonic() - t0, 3), "jobs": rows}
    tmp = root / f".{SUMMARY_NAME}.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, root / SUMMARY_NAME)
    return summary
