"""Writing one chunk's outputs where the chunk ran: the merge, split between neighbours.

`vdp.engine.merge.ChunkMerger` joins chunks in one process. Here each chunk is merged and
written by a `ChunkWriter` next to the model that produced it (`vdp.engine.writer_actor`);
neighbours exchange only what the seam needs, through the driver:

- chunk ``k``'s *head* (the overlap frames it ran before its start) leaves its writer as the
  layers the merge aligns or blends (`head`), nothing else;
- chunk ``k-1``'s writer fits that head to its own mapped *tail* (exactly as the one-process
  merge does), cross-fades, writes the tail and returns the fit: chunk ``k``'s map (`join`);
- chunk ``k``'s writer maps and writes its own frames once it has that map (`set_map`), and
  the value ranges that chunk 0's outputs fixed from the first frames (`Output.fixed_ranges`).

Until its map is known a chunk's results wait in memory (`held_bytes` says how much): in the
object store's, where a `StoreLoan` allows it (no copy), else copied. Outputs are written as parts
(`vdp.outputs.parts`) that the driver joins once the job succeeds.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from vdp.engine.budget import batch_nbytes
from vdp.engine.chunks import Chunk
from vdp.engine.merge import (Fit, Gathered, Policy, SeamRecord, by_frame, crossfade, crossfade_weights,
                              fit_scale_shift)
from vdp.errors import VdpError
from vdp.types import FrameBatch, VideoInfo


class OutputFolderError(VdpError):
    """A writer cannot reach the job's output folder (it is not on shared storage)."""


@dataclass
class WriteRequest:
    """What a chunk's writer needs (pickled to the writer's process).

    Attributes:
        spec_json: The job spec (JSON).
        info: The source's metadata.
        chunk: The chunk.
        next_overlap: Frames of this chunk the next chunk runs as its head (0 for the last).
        policies: Merge policy per layer (`vdp.catalog.merge_policies`).
        parts_dir: Where this chunk's parts of every output go (shared storage).
        store_dir: Where the chunk's raw results are kept for a resumed driver (None: not kept).
        attempt: Which run of the chunk.
    """

    spec_json: str
    info: VideoInfo
    chunk: Chunk
    next_overlap: int
    policies: dict[str, Policy]
    parts_dir: str
    store_dir: str | None = None
    attempt: int = 1


@dataclass
class WriteStats:
    """What a chunk's writer reports when it is finished (small: it goes to the driver)."""

    chunk: int
    frames: int = 0
    seconds: float = 0.0
    parts: list[str] = field(default_factory=list)
    stored: list[dict[str, Any]] = field(default_factory=list)
    where: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: Frames written, and seconds, that no earlier answer reported (the last tail, closing).
    late: tuple[int, float] = (0, 0.0)


class StoreLoan:
    """Bytes of the object store that the chunk writers of one process may keep borrowed while
    their chunks wait for a map (`vdp.types.borrow_store_memory`); beyond it they copy what they
    hold. Borrowed results stay pinned in the store until written, so the limit is a share of it.

    Args:
        limit: Bytes that may be borrowed at once.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(0, int(limit))
        self.used = 0
        self._lock = threading.Lock()

    def take(self, nbytes: int) -> bool:
        """Borrow `nbytes` if the limit allows it."""
        with self._lock:
            if self.used + nbytes > self.limit:
                return False
            self.used += nbytes
            return True

    def give(self, nbytes: int) -> None:
        """Return `nbytes` taken before."""
        with self._lock:
            self.used = max(0, self.used - nbytes)


class ChunkWriter:
    """Merges and writes one chunk (see the module docstring). Not thread-safe: one thread calls it.

    Args:
        request: The chunk and its job.
        where: Node and process of the writer, for the report.
        loan: Object-store bytes the batches held for a map may keep borrowed (None: every
            held batch is copied, for batches whose memory may not be kept).
    """

    def __init__(self, request: WriteRequest, where: dict[str, Any] | None = None,
                 loan: StoreLoan | None = None) -> None:
        from vdp.outputs import open_outputs
        from vdp.spec import JobSpec

        self.request = request
        self.chunk = request.chunk
        spec = JobSpec.model_validate_json(request.spec_json)
        parts = Path(request.parts_dir)
        ledger = parts.parents[1] / "ledger.jsonl"  # the driver's, under OUT/.vdp
        if not ledger.is_file():
            raise OutputFolderError(f"the writer on node {(where or {}).get('node_id', '?')} cannot see the job's "
                                    f"output folder {parts.parents[2]} (no {ledger.name} there): put outputs on "
                                    f"storage every node writes at the same path, or set "
                                    f"resources.write_on_workers: false")
        parts.mkdir(parents=True, exist_ok=True)
        # parts carry no audio: it is muxed once, when the parts are joined
        info = replace(request.info, has_audio=False)
        self.outputs = open_outputs(spec, parts, info)
        self.stats = WriteStats(self.chunk.index, where=dict(where or {}))
        self.store = None
        if request.store_dir is not None:
            from vdp.engine.ledger import ChunkStore

            self.store = ChunkStore(Path(request.store_dir))
        self.position = self.chunk.run_start
        self.fits: dict[str, Fit] | None = {} if self.chunk.index == 0 else None
        self.ranges: list[dict] | None = [{}] * len(self.outputs) if self.chunk.index == 0 else None
        self.loan = loan
        self._head = Gathered(self.chunk.overlap)
        self._held: list[tuple[FrameBatch, int]] = []  # batch, bytes borrowed from the store
        self._tail = Gathered(request.next_overlap)
        self._head_out: FrameBatch | None = None
        self._fixed_ranges: list[dict] | None = None
        self._stored: list[dict[str, Any]] = []
        self._reported = (0, 0.0)
        self._map_buffers: dict[str, torch.Tensor] = {}  # see `_mapped`

    # -- results in ---------------------------------------------------------------------------

    def add(self, batch: FrameBatch) -> None:
        """One result batch of the chunk, in frame order (frames already taken are ignored)."""
        if len(batch) == 0:
            return
        first, last = int(batch.indices[0]), int(batch.indices[-1])
        if last < self.position:
            return
        if first > self.position or last >= self.chunk.stop:
            raise ValueError(f"chunk {self.chunk.index} expected frame {self.position} next (range "
                             f"{self.chunk.run_start}-{self.chunk.stop - 1}), got frames {first}-{last}")
        batch = batch.slice(self.position - first)
        if self.store is not None:
            self._stored.append(_describe(self.store.write(self.chunk.index, self.request.attempt, batch)))
        self.position += len(batch)
        head_n = max(0, min(len(batch), self.chunk.start - first))
        if head_n:
            self._head.add(self._aligned_layers(batch.slice(0, head_n)))  # copies what it keeps
            batch = batch.slice(head_n)
            if self._head.full:
                self._head_out = self._head.take()
        if len(batch):
            self._held.append((batch, 0) if self.fits is not None and self.ranges is not None else self._keep(batch))
            self._drain()

    @property
    def complete(self) -> bool:
        """Every frame of the chunk's run range has arrived."""
        return self.position == self.chunk.stop

    @property
    def held_bytes(self) -> int:
        """Bytes of results waiting for this chunk's map or the next chunk's head."""
        return sum(batch_nbytes(b) for b, _ in self._held) + self._tail.nbytes

    def take_head(self) -> FrameBatch | None:
        """The head's aligned/blended layers once complete (handed out once)."""
        head, self._head_out = self._head_out, None
        return head

    def take_ranges(self) -> list[dict] | None:
        """Chunk 0: the ranges its outputs fixed from the first frames (handed out once)."""
        ranges, self._fixed_ranges = self._fixed_ranges, None
        return ranges

    def take_stored(self) -> list[dict[str, Any]]:
        """Raw result files kept since the last call (path, first, stop)."""
        stored, self._stored = self._stored, []
        return stored

    def take_written(self) -> tuple[int, float]:
        """Frames written and seconds spent writing since the last call."""
        frames, secs = self.stats.frames - self._reported[0], self.stats.seconds - self._reported[1]
        self._reported = (self.stats.frames, self.stats.seconds)
        return frames, secs

    # -- what the neighbours send ---------------------------------------------------------------

    def set_map(self, fits: dict[str, Fit], ranges: list[dict]) -> None:
        """This chunk's map (fits per aligned layer) and chunk 0's ranges (one per output, in
        the spec's order): write what is held."""
        if len(ranges) != len(self.outputs):
            raise ValueError(f"{len(ranges)} ranges for {len(self.outputs)} outputs")
        self.fits, self.ranges = dict(fits), list(ranges)
        for out, fixed in zip(self.outputs, self.ranges):
            out.adopt_ranges(fixed)
        self._drain()

    def join(self, head: FrameBatch | None) -> tuple[dict[str, Fit], SeamRecord, list[str]]:
        """Fit the next chunk's `head` to this chunk's tail, cross-fade, write the tail.

        Returns:
            The next chunk's map, the seam's record and any warnings.

        Raises:
            ValueError: This chunk's map is not known yet or its tail is incomplete.
        """
        if self.fits is None or not self.complete:
            raise ValueError(f"chunk {self.chunk.index}: join before its own frames are all written")
        self._drain()
        tail = self._tail.take()
        record, warnings, fits = SeamRecord(self.chunk.index + 1), [], {}
        if tail is None or head is None:
            if tail is not None:
                self._write(tail)
            self._close()
            return fits, record, warnings
        if len(tail) != len(head):
            raise ValueError(f"chunk {self.chunk.index + 1}: overlap of {len(head)} frames but "
                             f"{len(tail)} held by chunk {self.chunk.index}")
        w = crossfade_weights(len(head))
        merged = {}
        for name, new in head.layers.items():
            prev = tail.layers.get(name)
            policy = self.request.policies.get(name, "keep")
            if prev is None or not prev.is_floating_point() or not new.is_floating_point():
                continue
            fit = fit_scale_shift(new, prev) if policy == "align" else Fit()
            if policy == "align":
                if fit.degenerate:
                    warnings.append(f"chunk {self.chunk.index + 1}: layer {name!r} is constant on the "
                                    f"overlap; only its shift was aligned")
                fits[name] = record.fits[name] = fit
            merged[name] = crossfade(prev, new, fit, w)
        self._write(tail.with_layers(**merged))
        self._close()  # every frame of the chunk is written: its encoders end now, not with the job
        return fits, record, warnings

    def finish(self) -> WriteStats:
        """Close every part (after `join`, or for the last chunk once complete)."""
        if not self.complete or self.fits is None:
            raise ValueError(f"chunk {self.chunk.index}: finished before all its frames were written")
        self._drain()
        tail = self._tail.take()
        if tail is not None:  # the last chunk owns its tail outright
            self._write(tail)
        self._close()
        self.stats.late = self.take_written()
        return self.stats

    def _close(self) -> None:
        self._map_buffers = {}
        if self.stats.parts:
            return
        t0 = time.perf_counter()
        for out in self.outputs:
            self.stats.parts.append(os.fspath(out.close()))
        self.stats.seconds += time.perf_counter() - t0

    def abort(self) -> None:
        """Drop everything; nothing of this chunk stays."""
        import shutil

        for _, lent in self._held:
            self._give_back(lent)
        self._held = []
        self._map_buffers = {}
        self._tail.take()
        self._head.take()
        for out in self.outputs:
            out.abort()
        shutil.rmtree(self.request.parts_dir, ignore_errors=True)  # parts already closed, too

    # -- internals ----------------------------------------------------------------------------

    def _aligned_layers(self, batch: FrameBatch) -> FrameBatch:
        """The layers the next-door merge needs (aligned or blended), no RGB (views)."""
        keep = {n: v for n, v in batch.layers.items() if self.request.policies.get(n, "keep") != "keep"}
        empty = torch.empty((len(batch), 3, 0, 0), dtype=torch.uint8)
        return FrameBatch(empty, batch.indices, batch.pts_seconds, keep)

    def _drain(self) -> None:
        """Write held batches once the map and ranges are known; keep the tail for the join."""
        if self.fits is None or self.ranges is None:
            return
        hold_from = self.chunk.stop - self.request.next_overlap
        while self._held:
            held, lent = self._held.pop(0)
            batch = self._mapped(held)
            first = int(batch.indices[0])
            split = max(0, min(len(batch), hold_from - first))
            if split:
                self._write(batch.slice(0, split))
            if split < len(batch):
                self._tail.add(batch.slice(split))  # copied; kept until the next chunk's head
            self._give_back(lent)

    def _keep(self, batch: FrameBatch) -> tuple[FrameBatch, int]:
        """A batch to hold until the map comes: as it is while the loan allows, else a copy in
        memory of its own (a borrowed batch pins its object in the store)."""
        nbytes = batch_nbytes(batch)
        if self.loan is not None and self.loan.take(nbytes):
            return batch, nbytes
        return batch.owned(), 0

    def _give_back(self, lent: int) -> None:
        if lent and self.loan is not None:
            self.loan.give(lent)

    def _mapped(self, batch: FrameBatch) -> FrameBatch:
        """`batch` with this chunk's map applied, into one buffer per layer that the next call
        reuses: `_drain` writes the batch (outputs keep nothing of it once `write` returns) and
        copies its tail before it maps the next one. (A new batch-sized tensor per batch is
        mapped memory the kernel zeroes first: at 1080p ~3 of the ~5 ms per frame.)"""
        if not self.fits:
            return batch
        return batch.with_layers(**{n: f.apply(batch.layers[n], self._map_buffer(n, batch.layers[n]))
                                    for n, f in self.fits.items() if n in batch.layers})

    def _map_buffer(self, name: str, x: torch.Tensor) -> torch.Tensor | None:
        """Rows for `x`'s mapped values from this layer's buffer (None: `Fit.apply` decides)."""
        if not by_frame(x):
            return None
        buf = self._map_buffers.get(name)
        if buf is None or buf.shape[1:] != x.shape[1:] or len(buf) < len(x):
            buf = self._map_buffers[name] = torch.empty(x.shape, dtype=torch.float32)
        return buf[:len(x)]

    def _write(self, batch: FrameBatch) -> None:
        t0 = time.perf_counter()
        for out in self.outputs:
            out.write(batch)
        if self.chunk.index == 0 and self._fixed_ranges is None and self.stats.frames == 0:
            self._fixed_ranges = [out.fixed_ranges() for out in self.outputs]
        self.stats.frames += len(batch)
        self.stats.seconds += time.perf_counter() - t0


def _describe(stored: Any) -> dict[str, Any]:
    return {"path": os.fspath(stored.path), "first": stored.first, "stop": stored.stop}
