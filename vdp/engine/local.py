"""LocalRunner: drives a chain of stages in this process (tests, debugging, `--local`)."""
from __future__ import annotations

import time
from typing import Callable, Iterable

import torch

from vdp.engine.plan import StagePlan
from vdp.engine.progress import ProgressTracker
from vdp.engine.step import flush_step, process_step
from vdp.stages.base import Stage, StageReport
from vdp.types import FrameBatch, VideoInfo

Sink = Callable[[FrameBatch], None]


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
            tracker: ProgressTracker | None = None) -> dict[str, StageReport]:
        """Stream `source` through the stages and hand finished frames to `sink` in order.

        Args:
            source: Decoded batches in frame order.
            info: The stream's metadata (passed to each stage's `init_state`).
            sink: Called with every finished, non-empty batch, in frame order.
            tracker: Receives per-stage frame counts and busy time (for ``decode``: the time
                spent waiting for `source`).

        Returns:
            Each stage's report (fallbacks, warnings), keyed by stage name.
        """
        self.setup()
        states = [s.init_state(info) for s in self.stages]

        def push(batch: FrameBatch | None, first: int) -> None:
            for i in range(first, len(self.stages)):
                if batch is None or len(batch) == 0:
                    return
                batch, states[i], secs = process_step(self.stages[i], self.names[i], batch, states[i])
                if tracker:
                    tracker.add(self.names[i], len(batch), secs)
            if batch is not None and len(batch):
                sink(batch)

        def flush_all() -> None:
            for i, stage in enumerate(self.stages):
                out, secs = flush_step(stage, self.names[i], states[i])
                if tracker and out is not None:
                    tracker.add(self.names[i], len(out), secs)
                push(out, i + 1)

        started = False
        batches = iter(source)
        while True:
            t0 = time.perf_counter()
            batch = next(batches, None)
            if batch is None:
                break
            if batch.starts_segment and started:
                flush_all()
                states = [s.init_state(info) for s in self.stages]
            started = True
            if tracker:  # decode's busy time: how long the stages waited for frames
                tracker.add("decode", len(batch), time.perf_counter() - t0)
            push(batch, 0)
        flush_all()
        return {n: s.take_report() for n, s in zip(self.names, self.stages)}


def run_chunks_locally(runner: LocalRunner, todo: list, attempts: dict[int, int], assembler,
                       open_source: Callable, info: VideoInfo, ledger,
                       tracker: ProgressTracker | None = None) -> dict[str, StageReport]:
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

    Returns:
        Each stage's report.
    """
    reports = {n: StageReport() for n in runner.names}
    for chunk in todo:
        attempt = attempts.get(chunk.index, 0) + 1
        attempts[chunk.index] = attempt
        ledger.append("start", chunk=chunk.index, attempt=attempt, actors={n: "local" for n in runner.names})
        results = assembler.begin(chunk, attempt)
        got = runner.run(open_source(chunk), info, lambda b, r=results: assembler.add(r, b), tracker)
        for name, rep in got.items():
            reports[name].merge(rep)
        assembler.complete(results)
    return reports
