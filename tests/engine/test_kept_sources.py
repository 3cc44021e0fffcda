"""Kept sources: an opened video is reused by the next chunk of the same file and let go when unused."""
from __future__ import annotations

import os
import shutil
import time

import torch

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


def frames_of(batches) -> list:
    return [(int(b.indices[0]), len(b), b.frames.clone()) for b in batches]


def test_a_next_chunk_takes_the_kept_tail_and_decodes_on_without_seeking_back(monkeypatch):
    """Chunk runs [0, 40) then [28, 70) in one process (overlap 12, batches of 8): the second
    takes frames 28-39 from the first run's tail and its decoder goes on from frame 40, where it
    stands (no seek back to keyframe 0); batches and frames equal a fresh decode's."""
    from vdp.io import decode

    monkeypatch.setattr(kept_sources, "SOURCES", SourceCache())
    list(kept_sources.kept_batches(str(CLIP), start=0, stop=40, batch_frames=8, timeout_s=60, keep_tail=12))
    kept = kept_sources.KeptSource(str(CLIP), timeout_s=60)
    assert kept.kept and kept.replayed(28, 70) == 12 and kept.replayed(20, 70) == 0
    calls = []
    real = decode.VideoSource._decode_range
    monkeypatch.setattr(decode.VideoSource, "_decode_range",
                        lambda self, first, last: calls.append((first, last)) or real(self, first, last))
    got = frames_of(kept.batches(batch_frames=8, start=28, stop=70, keep_tail=12))
    assert calls[0] == (40, 44) and all(a == b for (_, b), (a, _) in zip(calls, calls[1:]))  # forward only
    assert_same(got, fresh_frames(28, 70))


def fresh_frames(start: int, stop: int) -> list:
    from vdp.io import decode

    return frames_of(decode.VideoSource(str(CLIP), timeout_s=60).batches(batch_frames=8, start_frame=start,
                                                                          stop_frame=stop))


def assert_same(got: list, fresh: list) -> None:
    assert [(f, n) for f, n, _ in got] == [(f, n) for f, n, _ in fresh]
    assert all(torch.equal(a, b) for (_, _, a), (_, _, b) in zip(got, fresh))


def test_a_run_that_does_not_start_in_the_tail_decodes_as_usual(monkeypatch):
    monkeypatch.setattr(kept_sources, "SOURCES", SourceCache())
    list(kept_sources.kept_batches(str(CLIP), start=0, stop=40, batch_frames=8, timeout_s=60, keep_tail=12))
    got = frames_of(kept_sources.kept_batches(str(CLIP), start=10, stop=30, batch_frames=8, timeout_s=60))
    assert [(f, n) for f, n, _ in got] == [(10, 8), (18, 8), (26, 4)]
    assert_same(got, fresh_frames(10, 30))


def test_a_run_inside_the_tail_replays_it_and_keeps_nothing(monkeypatch):
    """Frames 30-35 all come from the tail of [0, 40); the decoder has not moved, so no tail
    is kept for a run after it (which decodes, seeking as usual)."""
    monkeypatch.setattr(kept_sources, "SOURCES", SourceCache())
    list(kept_sources.kept_batches(str(CLIP), start=0, stop=40, batch_frames=8, timeout_s=60, keep_tail=12))
    kept = kept_sources.KeptSource(str(CLIP), timeout_s=60)
    assert kept.replayed(30, 36) == 6
    assert_same(frames_of(kept.batches(batch_frames=4, start=30, stop=36, keep_tail=12)),
                frames_of(kept_sources.KeptSource(str(CLIP), timeout_s=60).batches(batch_frames=4, start=30,
                                                                                     stop=36)))
    after = kept_sources.KeptSource(str(CLIP), timeout_s=60)
    assert after.kept and after.replayed(32, 50) == 0


def test_the_run_that_ends_the_video_keeps_no_tail(monkeypatch):
    monkeypatch.setattr(kept_sources, "SOURCES", SourceCache())
    list(kept_sources.kept_batches(str(CLIP), start=290, stop=310, batch_frames=8, timeout_s=60, keep_tail=12))
    assert kept_sources.KeptSource(str(CLIP), timeout_s=60).replayed(300, 310) == 0


def test_a_tail_larger_than_tail_bytes_is_not_kept(monkeypatch):
    monkeypatch.setattr(kept_sources, "SOURCES", SourceCache())
    monkeypatch.setattr(kept_sources, "TAIL_BYTES", 426 * 240 * 3 * 11)  # 11 frames, 12 asked
    list(kept_sources.kept_batches(str(CLIP), start=0, stop=40, batch_frames=8, timeout_s=60, keep_tail=12))
    assert kept_sources.KeptSource(str(CLIP), timeout_s=60).replayed(28, 70) == 0


def test_rebatch_slices_whole_batches_and_joins_only_across_pieces():
    from vdp.types import FrameBatch

    def piece(first, n):
        return FrameBatch(torch.arange(first, first + n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, 2, 2).clone(),
                          torch.arange(first, first + n), torch.arange(first, first + n, dtype=torch.float64))

    pieces = [piece(0, 3), piece(3, 12), piece(15, 2), piece(17, 1)]
    out = list(kept_sources.rebatch(iter(pieces), 4))
    assert [len(b) for b in out] == [4, 4, 4, 4, 2]
    assert torch.equal(torch.cat([b.indices for b in out]), torch.arange(18))
    assert all(torch.equal(b.frames[:, 0, 0, 0].long(), b.indices) for b in out)
    assert out[1].frames.data_ptr() == pieces[1].frames[1:].data_ptr()  # inside one piece: a view, no copy
