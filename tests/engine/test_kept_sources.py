"""Kept sources: an opened video is reused by the next chunk of the same file and let go when unused."""
from __future__ import annotations

import os
import shutil
import time

from vdp.engine import kept_sources
from vdp.engine.job import run_job
from vdp.engine.kept_sources import SourceCache
from tests.engine.test_seams import CLIP, affine_plans, spec

CHUNKING = {"enabled": True, "chunk_frames": 16, "overlap_frames": 8}


def test_a_kept_video_is_let_go_when_unused_for_keep_s(tmp_path, monkeypatch):
    clip = tmp_path / "clip.mp4"
    shutil.copy(CLIP, clip)
    cache = SourceCache(keep_s=0.3)
    monkeypatch.setattr(kept_sources, "SOURCES", cache)
    assert len(list(kept_sources.kept_batches(str(clip), start=0, stop=10, batch_frames=8, timeout_s=60))) == 2
    assert len(cache) == 1 and open_fds(clip) >= 1  # kept: the file stays open
    clip.unlink()  # e.g. a finished job's upload
    deadline = time.monotonic() + 10
    while open_fds(clip) and time.monotonic() < deadline:  # let go by the sweeper, unasked
        time.sleep(0.05)
    assert open_fds(clip) == 0 and len(cache) == 0


def open_fds(path) -> int:
    """This process's open file descriptors on `path` (also once it is deleted)."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}").startswith(str(path))
        except OSError:
            continue
    return n


def test_chunks_decoded_by_the_driver_open_a_video_once(tmp_path, monkeypatch):
    from vdp.io import decode

    opened = []
    real = decode.VideoSource.__init__

    def counting(self, *a, **k):
        opened.append(a[0] if a else k.get("path"))
        real(self, *a, **k)

    monkeypatch.setattr(kept_sources, "SOURCES", SourceCache())
    monkeypatch.setattr(decode.VideoSource, "__init__", counting)
    report = run_job(spec(CHUNKING, device="cpu"), tmp_path, plans=affine_plans(), local=True)
    assert len(report.chunks["plan"]) >= 3
    assert len(opened) == 2, opened  # the probe's, then one for every chunk (not one per chunk)
