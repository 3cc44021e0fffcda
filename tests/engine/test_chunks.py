"""Chunk plans: every frame owned once, overlap before each chunk, tiny last chunks folded."""
from __future__ import annotations

import pytest

from vdp.engine.chunks import Chunk, plan_chunks
from vdp.spec import ChunkingSpec


def test_disabled_chunking_is_one_chunk():
    assert plan_chunks(100, ChunkingSpec()) == [Chunk(0, 0, 100, 0)]


def test_chunks_own_every_frame_once_and_run_the_overlap_before():
    chunks = plan_chunks(100, ChunkingSpec(enabled=True, chunk_frames=30, overlap_frames=8))
    assert [(c.start, c.stop, c.run_start) for c in chunks] == [(0, 30, 0), (30, 60, 22), (60, 90, 52), (90, 100, 82)]
    assert [c.overlap for c in chunks] == [0, 8, 8, 8]
    owned = [f for c in chunks for f in range(c.start, c.stop)]
    assert owned == list(range(100))
    assert sum(c.run_frames for c in chunks) == 100 + 3 * 8


def test_last_chunk_shorter_than_the_overlap_is_folded():
    chunks = plan_chunks(95, ChunkingSpec(enabled=True, chunk_frames=30, overlap_frames=8))
    assert [(c.start, c.stop) for c in chunks] == [(0, 30), (30, 60), (60, 95)]


def test_short_video_is_one_chunk_and_bad_length_is_refused():
    assert len(plan_chunks(10, ChunkingSpec(enabled=True, chunk_frames=16, overlap_frames=4))) == 1
    with pytest.raises(ValueError, match="total_frames must be >= 1"):
        plan_chunks(0, ChunkingSpec(enabled=True))
