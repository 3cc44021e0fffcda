"""Chunk plans: a long video as overlapping frame ranges that can run in parallel.

Chunk ``k`` *owns* frames ``[start, stop)`` (they are written from its results) and *runs*
frames ``[run_start, stop)``: every chunk after the first also runs the ``overlap`` frames
before its start, which the previous chunk owns. Those frames are what the merge uses to align
chunk ``k`` to chunk ``k-1`` and to warm the state of recurrent stages (`vdp.engine.merge`).

A last chunk that would own fewer frames than the overlap is folded into the one before it
(running `overlap` frames to write a handful is not worth a chunk).

Keyframes: a chunk's decoding starts at the keyframe at or before its ``run_start`` (TorchCodec
seeks there and decodes forward), so a ``run_start`` in the middle of a group of pictures costs
the frames before it once more, for nothing: half a GOP per chunk on average (~125 frames with
FFmpeg's default GOP of 250), and for an input with few keyframes every chunk decodes from near
the start of the file. Given the input's keyframes, each chunk boundary moves (by at most a
quarter of `chunk_frames`) so that ``run_start`` is a keyframe; `decode_lead` counts the frames
decoded before run starts that remain, which the job reports.
"""
from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass
from typing import Sequence

from vdp.spec import ChunkingSpec


@dataclass(frozen=True)
class Chunk:
    """One chunk of a job.

    Attributes:
        index: Position in the plan (0-based).
        start: First frame the chunk owns.
        stop: One past the last frame it owns (and runs).
        run_start: First frame it runs (``start - overlap``, or ``start`` for the first chunk).
    """

    index: int
    start: int
    stop: int
    run_start: int

    @property
    def overlap(self) -> int:
        """Frames run before `start` (owned by the previous chunk)."""
        return self.start - self.run_start

    @property
    def run_frames(self) -> int:
        """Frames this chunk runs through the stages."""
        return self.stop - self.run_start

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def plan_chunks(total_frames: int, chunking: ChunkingSpec,
                keyframes: Sequence[int] | None = None) -> list[Chunk]:
    """Split ``[0, total_frames)`` into chunks; one chunk when chunking is off or not needed.

    Args:
        total_frames: Frames the job processes (>= 1).
        chunking: Chunk length and overlap.
        keyframes: The input's keyframe indices, ascending (None: unknown): chunk ``k`` then
            starts at the keyframe nearest its nominal ``run_start`` (the previous start plus
            `chunk_frames`, less the overlap) within a quarter chunk, so its decoding starts
            exactly where it runs; without one there, it starts where nominal.

    Returns:
        Chunks in frame order; together they own every frame exactly once.

    Raises:
        ValueError: `total_frames` < 1.
    """
    if total_frames < 1:
        raise ValueError(f"total_frames must be >= 1, got {total_frames}")
    if not chunking.enabled:
        return [Chunk(0, 0, total_frames, 0)]
    size, overlap = chunking.chunk_frames, chunking.overlap_frames
    keys = sorted(set(keyframes)) if keyframes else []
    starts = [0]
    while starts[-1] + size < total_frames:
        nominal = starts[-1] + size
        # the overlap frames must belong to the previous chunk: run_start >= its start
        snapped = _keyframe_near(keys, nominal - overlap, reach=size // 4, lowest=starts[-1])
        starts.append(nominal if snapped is None else snapped + overlap)
    if len(starts) > 1 and total_frames - starts[-1] < overlap:
        starts.pop()
    stops = starts[1:] + [total_frames]
    return [Chunk(k, s, e, max(0, s - overlap)) for k, (s, e) in enumerate(zip(starts, stops))]


def _keyframe_near(keys: list[int], target: int, *, reach: int, lowest: int) -> int | None:
    """The keyframe within `reach` of `target` and not below `lowest` that is nearest to it
    (the earlier of two as near), or None."""
    lo, hi = max(lowest, target - reach), target + reach
    i = bisect.bisect_left(keys, lo)
    near = keys[i:bisect.bisect_right(keys, hi)]
    return min(near, key=lambda k: (abs(k - target), k)) if near else None


def decode_lead(chunks: list[Chunk], keyframes: Sequence[int] | None) -> int | None:
    """Frames decoded only to reach the chunks' run starts: for each chunk after the first, its
    ``run_start`` less the keyframe at or before it (None: keyframes unknown)."""
    if not keyframes:
        return None
    keys = sorted(set(keyframes))
    lead = 0
    for c in chunks[1:]:
        i = bisect.bisect_right(keys, c.run_start)
        lead += c.run_start - (keys[i - 1] if i else 0)
    return lead
