"""From chunk results, however they arrive, to the merge and the ledger.

Chunks finish in any order, but the merge (`ChunkMerger`) takes them in frame order. Each run of
a chunk gets a `ChunkResults`; `Assembler.add` hands a result batch straight to the merge when
its chunk is the one being merged and nothing of it is waiting, and otherwise spills it to the
chunk store on disk (layers only), so results that cannot be merged yet never pile up in RAM.
When the merge reaches a chunk, its spilled batches are replayed (their RGB frames decoded again
from the source, seeking to the first one; not at all when no output reads them) before its
live ones.

With ``persist`` every batch is also stored, and a finished chunk's files are kept (and listed in
the ledger) until the job ends, so a resumed driver replays them instead of running the chunk
again. Without it, a chunk's spilled files are deleted as soon as it is merged.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch

from vdp.engine.chunks import Chunk
from vdp.engine.ledger import ChunkStore, Ledger, StoredBatch, describe_files
from vdp.engine.merge import ChunkMerger
from vdp.engine.worker_decode import frameless
from vdp.types import FrameBatch


class FrameReader:
    """Decodes source frames for replayed batches, in increasing frame order.

    Keeps one decoder open and positioned; a request that does not continue where the last one
    ended reopens it at the requested frame (decoding seeks, it never starts from zero).

    Args:
        path: The source video.
        batch_frames: Frames per decode call.
        timeout_s: Decode deadline per batch.
        hdr: ``"tonemap"`` or ``"keep"`` (see `vdp.io.VideoSource`).
        stream_index: Absolute index of the video stream (None: FFmpeg's best one).
    """

    def __init__(self, path: str, *, batch_frames: int = 16, timeout_s: float = 120.0,
                 hdr: str = "tonemap", stream_index: int | None = None) -> None:
        self.path = path
        self.hdr = hdr
        self.stream_index = stream_index
        self.batch_frames = batch_frames
        self.timeout_s = timeout_s
        self._it: Iterator[FrameBatch] | None = None
        self._buf: FrameBatch | None = None
        self._pos = -1
        self.reopens = 0

    def read(self, first: int, stop: int) -> FrameBatch:
        """Frames ``[first, stop)`` (no layers)."""
        from vdp.io import iter_batches

        if first != self._pos:
            self._it = iter_batches(self.path, batch_frames=self.batch_frames, start_frame=first,
                                    timeout_s=self.timeout_s, hdr=self.hdr, stream_index=self.stream_index)
            self._buf, self._pos = None, first
            self.reopens += 1
        parts = []
        need = stop - first
        while need > 0:
            if self._buf is None or len(self._buf) == 0:
                self._buf = next(self._it)  # type: ignore[arg-type]
            take = min(need, len(self._buf))
            parts.append(self._buf.slice(0, take))
            self._buf = self._buf.slice(take)
            need -= take
        self._pos = stop
        return FrameBatch.concat(parts)


@dataclass
class _Entry:
    first: int
    stop: int
    batch: FrameBatch | None = None
    stored: StoredBatch | None = None


@dataclass
class ChunkResults:
    """Result batches of one run of one chunk, in frame order.

    Attributes:
        chunk: The chunk.
        attempt: Which run of it (1-based, counted across drivers).
        finished: Every result of the run has been added.
        stored: Files of this run in the store, in order.
    """

    chunk: Chunk
    attempt: int
    finished: bool = False
    stored: list[StoredBatch] = field(default_factory=list)
    _queue: deque[_Entry] = field(default_factory=deque)

    @property
    def waiting(self) -> int:
        """Batches added but not merged yet."""
        return len(self._queue)

    def route(self, ref: Any) -> Any:
        """Where a result ref goes: to this driver, as is (`RemoteResults.route` differs)."""
        return ref


class Assembler:
    """Feeds chunk results to the merge in order; spills, persists and records them.

    Args:
        chunks: The plan.
        merger: The merge (its sink writes the outputs).
        store: Where spilled and persisted batches go.
        ledger: Receives ``done`` events.
        reader: Decodes frames of replayed batches.
        persist: Keep every finished chunk's results until the job ends (resume).
        keep_frames: Some output reads the RGB frames; else results are held and merged without
            them (`vdp.engine.worker_decode.frameless`) and replayed ones are not decoded.
    """

    def __init__(self, chunks: list[Chunk], merger: ChunkMerger, store: ChunkStore, ledger: Ledger,
                 reader: FrameReader, *, persist: bool, keep_frames: bool = True) -> None:
        self.chunks = chunks
        self.merger = merger
        self.store = store
        self.ledger = ledger
        self.reader = reader
        self.persist = persist
        self.keep_frames = keep_frames
        self.current: dict[int, ChunkResults] = {}
        self.spilled_bytes = 0

    def begin(self, chunk: Chunk, attempt: int, node_id: str | None = None) -> ChunkResults:
        """A new run of `chunk` (its last stage on `node_id`, unused here): any earlier
        unfinished run's results are dropped."""
        old = self.current.get(chunk.index)
        if old is not None and not old.finished:
            self.abandon(old)
        res = ChunkResults(chunk, attempt)
        self.current[chunk.index] = res
        return res

    def reuse(self, chunk: Chunk, files: list[StoredBatch]) -> None:
        """A chunk finished by an earlier driver: replay its kept files."""
        res = ChunkResults(chunk, 0, finished=True, stored=list(files))
        res._queue.extend(_Entry(f.first, f.stop, stored=f) for f in files)
        self.current[chunk.index] = res
        self.pump()

    def add(self, res: ChunkResults, batch: FrameBatch) -> None:
        """One result batch of a run (frame order)."""
        if len(batch) == 0 or self.current.get(res.chunk.index) is not res:
            return
        if not self.keep_frames:
            batch = frameless(batch)
        first, stop = int(batch.indices[0]), int(batch.indices[-1]) + 1
        live = self.merger.index == res.chunk.index and not res._queue
        stored = None
        if self.persist or not live:
            stored = self.store.write(res.chunk.index, res.attempt, batch)
            res.stored.append(stored)
            self.spilled_bytes += stored.path.stat().st_size
        res._queue.append(_Entry(first, stop, batch if live else None, stored))
        self.pump()

    def complete(self, res: ChunkResults) -> None:
        """The run delivered every result: record it, keep its files if persisting."""
        if self.current.get(res.chunk.index) is not res:
            return
        res.finished = True
        if self.persist:
            moved = self.store.commit(res.chunk.index, res.attempt, res.stored)
            by_old = {s.path.name: m for s, m in zip(res.stored, moved)}
            for e in res._queue:
                if e.stored is not None:
                    e.stored = by_old[e.stored.path.name]
            res.stored = moved
        self.ledger.append("done", chunk=res.chunk.index, attempt=res.attempt,
                           frames=res.chunk.run_frames, kept=self.persist,
                           files=describe_files(res.stored) if self.persist else [])
        self.pump()

    def abandon(self, res: ChunkResults) -> None:
        """The run was lost: forget what was not merged and delete its files."""
        res._queue.clear()
        if not res.finished:
            self.store.discard(res.chunk.index, res.attempt)
        if self.current.get(res.chunk.index) is res:
            del self.current[res.chunk.index]

    def pump(self) -> None:
        """Merge whatever is mergeable now, chunk after chunk."""
        while not self.merger.done:
            res = self.current.get(self.merger.index)
            if res is None:
                return
            while res._queue:
                entry = res._queue.popleft()
                if entry.stop > self.merger.position:  # else merged already, by an earlier run
                    self.merger.feed(self._load(entry))
            if not res.finished:
                return
            self.merger.end_chunk()
            if not self.persist:
                self.store.discard(res.chunk.index)

    def _load(self, entry: _Entry) -> FrameBatch:
        if entry.batch is not None:
            return entry.batch
        if entry.stored is None:
            raise ValueError(f"result frames {entry.first}-{entry.stop - 1} are neither in memory nor stored")
        data = entry.stored.load()
        if not self.keep_frames:
            empty = torch.empty((entry.stop - entry.first, 3, 0, 0), dtype=torch.uint8)
            return FrameBatch(empty, data["indices"], data["pts_seconds"], data["layers"])
        src = self.reader.read(entry.first, entry.stop)
        return FrameBatch(src.frames, data["indices"], data["pts_seconds"], data["layers"])
