"""Splitting a batch stream into segments (shots) so stages restart their state at each cut."""
from __future__ import annotations

from typing import Callable, Iterable, Iterator

from vdp.types import FrameBatch

#: Given the next batch, returns the source frame indices at which a new segment starts.
CutFinder = Callable[[FrameBatch], list[int]]


def split_at_cuts(source: Iterable[FrameBatch], find_cuts: CutFinder) -> Iterator[FrameBatch]:
    """Yield the batches of `source`, split so no batch straddles a cut.

    The piece that starts at a cut has ``starts_segment=True``; runners flush every stage and
    restart its state there.

    Args:
        source: Batches in frame order.
        find_cuts: Called once per batch, in order (it may keep state across calls).
    """
    for batch in source:
        first = int(batch.indices[0])
        cuts = {c for c in find_cuts(batch) if c > 0}
        starts = sorted(int(p) for p in range(len(batch)) if int(batch.indices[p]) in cuts)
        bounds = [0, *[p for p in starts if p > 0], len(batch)]
        for a, b in zip(bounds[:-1], bounds[1:]):
            piece = batch.slice(a, b)
            piece.starts_segment = a in starts or (a == 0 and batch.starts_segment)
            yield piece
