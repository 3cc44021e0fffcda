"""LocalRunner: drives a chain of stages in this process (tests, debugging, `--local`).

The chain's rules (segments, flush order, reports, progress) are `vdp.engine.chain`'s; this
module is its in-process transport: each call is a plain method call on a set-up stage.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import torch

from vdp.engine.chain import Chain, ChainReports, run_stream
from vdp.engine.plan import StagePlan
from vdp.engine.progress import ProgressTracker
from vdp.engine.step import flush_step, process_step, step_meta
from vdp.stages.base import Stage, StageReport
from vdp.types import FrameBatch, VideoInfo

Sink = Callable[[FrameBatch], None]


class _InProcess:
    """`ChainTransport` over stages in this process; finished batches go to `sink`."""

    def __init__(self, runner: "LocalRunner", info: VideoInfo, sink: Sink, reports: ChainReports) -> None:
        self.runner, self.info, self.sink, self.reports = runner, info, sink, reports
        self.states: list[Any] = []
        self.chain: Chain | None = None

    def open(self) -> None:
        self.states = [s.init_state(self.info) for s in self.runner.stages]

    def process(self, batch: FrameBatch | None, first: int = 0) -> None:
        names, stages = self.runner.names, self.runner.stages
        for i in range(first, len(stages)):
            if batch is None or len(batch) == 0:
                return
            batch, self.states[i], secs = process_step(stages[i], names[i], batch, self.states[i])
            self.chain.count(names[i], step_meta(batch, secs))
        if batch is not None and len(batch):
            self.sink(batch)

    def flush(self, stage: int) -> None:
        out, secs = flush_step(self.runner.stages[stage], self.runner.names[stage], self.states[stage])
        self.chain.count(self.runner.names[stage], step_meta(out, secs))
        self.process(out, stage + 1)

    def close(self) -> None:
        for name, stage in zip(self.runner.names, self.runner.stages):
            self.reports.add(name, stage.take_report())
        self.states = []


class LocalRunner:
    """Runs stages in order in the calling process.

    Args:
        plans: Stage recipes, in pipeline order.
        device: Device passed to every stage's `setup`.
    """

    def __init__(self, plans: list[StagePlan], *, device: str | torch.device = "cpu") -> None:
        self.stages: list[Stage] = [p.build() for p in plans]
        self.names = [p.name for p in plans]
        self.device = torch.device(device)
        self._ready = False

    def setup(self) -> None:
        """Load every stage's model (once)."""
        if not self._ready:
            for s in self.stages:
                s.setup(self.device)
            self._ready = True

    def run(self, source: Iterable[FrameBatch], info: VideoInfo, sink: Sink,
            tracker: ProgressTracker | None = None,
            decode_seconds: Callable[[FrameBatch], float | None] | None = None) -> dict[str, StageReport]:
        """Stream `source` through the stages and hand finished frames to `sink` in order.

        Args:
            source: Decoded batches in frame order.
            info: The stream's metadata (passed to each stage's `init_state`).
            sink: Called with every finished, non-empty batch, in frame order.
            tracker: Receives per-stage frame counts and busy time (for ``decode``: what
                `decode_seconds` says a batch took, else the time spent waiting for `source`).
            decode_seconds: The seconds a batch took to decode, where `source` decodes ahead
                in another thread (None: not known for that batch).

        Returns:
            Each stage's report (fallbacks, warnings), keyed by stage name.
        """
        self.setup()
        reports = ChainReports(self.names)
        transport = _InProcess(self, info, sink, reports)
        transport.chain = Chain(self.names, transport, tracker)
        run_stream(transport.chain, source, decode_seconds)
        return reports.reports


def run_chunks_locally(runner: LocalRunner, todo: list, attempts: dict[int, int], assembler,
                       open_source: Callable, info: VideoInfo, ledger,
                       tracker: ProgressTracker | None = None,
                       decode_seconds: Callable[[FrameBatch], float | None] | None = None
                       ) -> dict[str, StageReport]:
    """Run chunks one after another in this process, feeding their results to `assembler`.

    The same chunk plan, merge, ledger and resume as on Ray, without parallelism.

    Args:
        runner: The in-process stage chain.
        todo: Chunks to run, in order.
        attempts: Runs each chunk had so far (updated in place).
        assembler: Takes the results (`vdp.engine.assembly.Assembler`).
        open_source: Decoded batches of a chunk's run range.
        info: The source's metadata.
        ledger: Receives ``start`` events.
        tracker: Per-stage progress.
        decode_seconds: The seconds a batch took to decode (see `LocalRunner.run`).

    Returns:
        Each stage's report.
    """
    reports = ChainReports(runner.names)
    for chunk in todo:
        attempt = attempts.get(chunk.index, 0) + 1
        attempts[chunk.index] = attempt
        ledger.append("start", chunk=chunk.index, attempt=attempt, actors={n: "local" for n in runner.names})
        results = assembler.begin(chunk, attempt)
        reports.merge(runner.run(open_source(chunk), info, lambda b, r=results: assembler.add(r, b), tracker,
                                 decode_seconds))
        assembler.complete(results)
    return reports.reports
