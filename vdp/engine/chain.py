"""The stage-chain protocol: how a chain of stages runs over one stream, on any transport.

The rules, written once and used by the in-process runner (`vdp.engine.local`) and by each
chunk run on Ray (`vdp.engine.chunk_run`):

Segments
    A stream opens a state on every stage before its first batch. A batch that starts a new
    segment (a scene cut) after the first ends the current segment and opens a new one.
Flush order
    Ending a segment (or the stream) flushes stage 0, then 1, ...: what stage ``i`` flushes
    still passes through stages ``i+1...``, so nothing buffered is lost or skips a stage. Then
    the segment's stream is closed on every stage.
Reports
    Closing hands each stage's report to `ChainReports`; a report that cannot be had (its
    actor died) becomes one warning naming the stage, on every path.
Progress and timing
    Every stage call is counted once with the frames it emitted and its own busy seconds;
    ``decode`` counts each batch with the seconds it took to get it.

A transport only knows how to make the calls (`ChainTransport`); `Chain` decides which and when.
"""
from __future__ import annotations

import time
from typing import Callable, Iterable, Protocol

from vdp.engine.progress import ProgressTracker
from vdp.stages.base import StageReport
from vdp.types import FrameBatch

#: The warning a lost stage report leaves in the job report.
LOST_REPORT = "stage {name}: a replica's report was lost with its actor (fallbacks it recorded may be missing)"


class ReportLostError(Exception):
    """A stage's report cannot be read (the actor holding it died)."""


class ChainTransport(Protocol):
    """Makes a chain's calls; `Chain` decides which calls and when."""

    def open(self) -> None:
        """Open a new stream state on every stage."""

    def process(self, batch: FrameBatch) -> None:
        """Send `batch` through every stage, in order."""

    def flush(self, stage: int) -> None:
        """Flush stage `stage` and send what it emits through the stages after it."""

    def close(self) -> None:
        """Close the current stream on every stage, handing their reports to the chain's
        `ChainReports`."""


class ChainReports:
    """Stage reports of a job (or a stream), merged per stage name, in call order."""

    def __init__(self, names: Iterable[str]) -> None:
        self.reports = {n: StageReport() for n in names}

    def add(self, name: str, report: StageReport) -> None:
        self.reports[name].merge(report)

    def lost(self, name: str) -> None:
        """The stage's report is gone with its actor: say so instead."""
        self.reports[name].warnings.append(LOST_REPORT.format(name=name))

    def gather(self, name: str, fetch: Callable[[], StageReport]) -> None:
        """Add what `fetch` returns; when it raises `ReportLostError`, record the loss."""
        try:
            report = fetch()
        except ReportLostError:
            self.lost(name)
            return
        self.add(name, report)

    def merge(self, other: "ChainReports | dict[str, StageReport]") -> None:
        items = other.reports if isinstance(other, ChainReports) else other
        for name, report in items.items():
            self.add(name, report)


class Chain:
    """One stream's run of the protocol (module docstring) over `transport`.

    Args:
        names: Stage names in pipeline order.
        transport: Makes the calls.
        tracker: Receives the per-stage progress (`count`).
    """

    def __init__(self, names: list[str], transport: ChainTransport,
                 tracker: ProgressTracker | None = None) -> None:
        self.names = names
        self.transport = transport
        self.tracker = tracker
        self.opened = False
        self.started = False  # a batch went in since the stream opened
        self.finished = False

    def begin(self) -> None:
        """Open the stream (before the first batch)."""
        if not self.opened:
            self.transport.open()
            self.opened = True

    def cuts_at(self, batch: FrameBatch) -> bool:
        """Whether pushing `batch` first ends the current segment (a cut after the start)."""
        return batch.starts_segment and self.started

    def push(self, batch: FrameBatch, decode_seconds: float | None = 0.0) -> None:
        """Feed one decoded batch (`decode_seconds`: what getting it took; None when the
        transport decodes it and counts ``decode`` itself)."""
        self.begin()
        if self.cuts_at(batch):
            self.end_segment()
            self.transport.open()
        self.started = True
        if decode_seconds is not None:
            self.count("decode", {"frames": len(batch), "seconds": decode_seconds})
        self.transport.process(batch)

    def finish(self) -> None:
        """End of stream: flush every stage in order and close."""
        self.begin()
        if not self.finished:
            self.end_segment()
            self.finished = True

    def end_segment(self) -> None:
        for i in range(len(self.names)):
            self.transport.flush(i)
        self.transport.close()

    def count(self, name: str, meta: dict) -> None:
        """Add one finished call's record (``{"frames", "seconds"}``) to the progress."""
        if self.tracker is not None:
            self.tracker.add(name, int(meta["frames"]), float(meta["seconds"]))


def run_stream(chain: Chain, source: Iterable[FrameBatch],
               decode_seconds: Callable[[FrameBatch], float | None] | None = None) -> None:
    """Drive `chain` over `source` to its end (blocking transports). ``decode`` time is what
    `decode_seconds` says a batch took to decode (decoded ahead in another thread, the wait for
    it says nothing of decoding's own speed), else the wait for the batch."""
    chain.begin()
    batches = iter(source)
    while True:
        t0 = time.perf_counter()
        batch = next(batches, None)
        if batch is None:
            break
        waited = time.perf_counter() - t0
        own = decode_seconds(batch) if decode_seconds is not None else None
        chain.push(batch, waited if own is None else own)
    chain.finish()
