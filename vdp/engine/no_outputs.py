"""A job without outputs on Ray: results stay where they are made, only progress travels.

A job with no outputs (a throughput check, a dry run of a chain) still runs every stage on every
frame, but nothing reads the results: the last stage's actor drops each batch it makes
(`StageActor.open`'s ``drop_results``) and answers only with its facts, so no result enters the
object store, no writer takes it and no seam is fitted. `ResultlessAssembler` stands where
`vdp.engine.remote_assembly.RemoteAssembler` stands in the scheduler: it records each chunk's
completion in the ledger and counts the frames the chunk owns as done.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from vdp.engine.chunks import Chunk
from vdp.engine.ledger import Ledger, StoredBatch


@dataclass
class ResultlessRun:
    """One chunk run whose results are dropped (what `ResultlessAssembler.begin` returns)."""

    chunk: Chunk
    attempt: int

    def route(self, ref: Any) -> Any:
        """The last stage's result ref, as is: it resolves to None once the batch is done."""
        return ref


class ResultlessAssembler:
    """Counts the chunks of a job without outputs (see the module docstring).

    Args:
        chunks: The plan.
        ledger: Receives ``done`` events.
        on_written: Called with (frames, seconds) when a chunk is done: its owned frames.
    """

    def __init__(self, chunks: list[Chunk], ledger: Ledger,
                 on_written: Callable[[int, float], None] | None = None) -> None:
        self.chunks = chunks
        self.ledger = ledger
        self.on_written = on_written
        self.current: dict[int, ResultlessRun] = {}
        self.completed: set[int] = set()
        self.seams: list[Any] = []
        self.warnings: list[str] = []
        self.writer_info: list[dict[str, Any]] = []

    def begin(self, chunk: Chunk, attempt: int, node_id: str | None = None) -> ResultlessRun:
        """A new run of `chunk` (`node_id` unused: nothing is written)."""
        run = self.current[chunk.index] = ResultlessRun(chunk, attempt)
        return run

    def add(self, res: ResultlessRun, facts: Any) -> None:
        """Nothing arrives: the last stage returns no results."""

    def complete(self, res: ResultlessRun) -> None:
        """The run processed every frame: record it and count its own frames."""
        if self.current.get(res.chunk.index) is not res or res.chunk.index in self.completed:
            return
        self.completed.add(res.chunk.index)
        self.ledger.append("done", chunk=res.chunk.index, attempt=res.attempt,
                           frames=res.chunk.run_frames, kept=False, files=[])
        if self.on_written is not None:
            self.on_written(res.chunk.stop - res.chunk.start, 0.0)

    def abandon(self, res: ResultlessRun) -> None:
        """The run was lost: its chunk runs again."""
        if self.current.get(res.chunk.index) is res:
            del self.current[res.chunk.index]

    def reuse(self, chunk: Chunk, files: list[StoredBatch]) -> None:
        raise ValueError("a job without outputs keeps no chunk results to reuse")

    def pump(self) -> None:
        """Nothing to merge."""

    def finish(self) -> list:
        """No parts to close; raises if a chunk never completed."""
        missing = [c.index for c in self.chunks if c.index not in self.completed]
        if missing:
            raise RuntimeError(f"chunks {missing} of a job without outputs never completed")
        return []

    def abort(self) -> None:
        """Nothing written, nothing to remove."""

    def release(self) -> None:
        """No writers were used."""
