"""Chunk plans: every frame owned once, overlap before each chunk, tiny last chunks folded."""
from __future__ import annotations

import pytest

from vdp.engine.chunks import Chunk, decode_lead, plan_chunks
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


KEYED = ChunkingSpec(enabled=True, chunk_frames=40, overlap_frames=8)


def test_run_starts_move_to_the_nearest_keyframe_within_a_quarter_chunk():
    keys = list(range(0, 200, 25))  # a keyframe every 25 frames
    chunks = plan_chunks(200, KEYED, keys)
    # nominal run starts 32, 72, ... become the nearest keyframe (25, 75, 125, 175 with ties earlier)
    assert [c.run_start for c in chunks[1:]] == [25, 75, 125, 175]
    assert [(c.start, c.stop) for c in chunks] == [(0, 33), (33, 83), (83, 133), (133, 183), (183, 200)]
    assert [f for c in chunks for f in range(c.start, c.stop)] == list(range(200))
    assert decode_lead(chunks, keys) == 0
    assert decode_lead(plan_chunks(200, KEYED), keys) == 7 + 22 + 12 + 2  # 32-25, 72-50, 112-100, 152-150


def test_without_a_keyframe_in_reach_a_chunk_starts_where_nominal():
    chunks = plan_chunks(200, KEYED, [0, 105])
    assert [c.run_start for c in chunks[1:]] == [32, 72, 105, 145]  # only the third moves (112 -> 105)
    assert [c.stop for c in chunks] == [40, 80, 113, 153, 200]  # the 7-frame tail folded as before
    assert decode_lead(chunks, [0, 105]) == 32 + 72 + 0 + 40
    assert plan_chunks(200, KEYED, [0, 100]) == plan_chunks(200, KEYED)  # 112 - 100 is beyond 40 // 4
    assert decode_lead(chunks, None) is None


def test_every_frame_a_keyframe_or_none_known_gives_the_plain_plan():
    plain = plan_chunks(200, KEYED)
    assert plan_chunks(200, KEYED, list(range(200))) == plain
    assert plan_chunks(200, KEYED, None) == plan_chunks(200, KEYED, []) == plain


def test_a_moved_chunk_still_runs_only_frames_its_predecessor_owns():
    # overlap close to the chunk length: a keyframe before the previous chunk's start is not taken
    spec = ChunkingSpec(enabled=True, chunk_frames=16, overlap_frames=14)
    chunks = plan_chunks(64, spec, [0, 1, 2, 30])
    for prev, c in zip(chunks, chunks[1:]):
        assert prev.start <= c.run_start < c.start <= prev.stop == c.start
    assert [f for c in chunks for f in range(c.start, c.stop)] == list(range(64))
