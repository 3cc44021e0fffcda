"""Chunk plans: a long video as overlapping frame ranges that can run in parallel.

Chunk ``k`` *owns* frames ``[start, stop)`` (they are written from its results) and *runs*
frames ``[run_start, stop)``: every chunk after the first also runs the ``overlap`` frames
before its start, which the previous chunk owns. Those frames are what the merge uses to align
chunk ``k`` to chunk ``k-1`` and to warm the state of recurrent stages (`vdp.engine.merge`).

A last chunk that would own fewer frames than the overlap is folded into the one before it
(running `overlap` frames to write a handful is not worth a chunk).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

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


def plan_chunks(total_frames: int, chunking: ChunkingSpec) -> list[Chunk]:
    """Split ``[0, total_frames)`` into chunks; one chunk when chunking is off or not needed.

    Args:
        total_frames: Frames the job processes (>= 1).
        chunking: Chunk length and overlap.

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
    starts = list(range(0, total_frames, size))
    if len(starts) > 1 and total_frames - starts[-1] < overlap:
        starts.pop()
    stops = starts[1:] + [total_frames]
    return [Chunk(k, s, e, max(0, s - overlap)) for k, (s, e) in enumerate(zip(starts, stops))]
