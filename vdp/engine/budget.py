"""Object-store budget: how many bytes a job's in-flight batches may hold on Ray."""
from __future__ import annotations

from vdp.engine.metrics import record_in_flight
from vdp.types import FrameBatch


class ObjectStoreBudget:
    """Bytes the job's in-flight objects may hold (estimated), with the peak reached; what is in
    flight (batches and bytes) is exported as Ray metrics as it changes.

    Args:
        limit_bytes: The budget.
    """

    def __init__(self, limit_bytes: int) -> None:
        self.limit = int(limit_bytes)
        self.used = 0
        self.peak = 0
        self.batches = 0

    def fits(self, cost: int) -> bool:
        """Whether `cost` more bytes fit (always, when nothing is in flight)."""
        return self.used == 0 or self.used + cost <= self.limit

    def take(self, cost: int) -> None:
        """Count `cost` bytes as in flight."""
        self.used += cost
        self.peak = max(self.peak, self.used)
        self.batches += 1
        record_in_flight(self.batches, self.used)

    def give(self, cost: int) -> None:
        """Release `cost` bytes (never below zero)."""
        self.used = max(0, self.used - cost)
        self.batches = max(0, self.batches - 1)
        record_in_flight(self.batches, self.used)


def batch_nbytes(batch: FrameBatch) -> int:
    """Bytes of a batch's frames and layers (what it costs in the object store)."""
    return int(batch.frames.nbytes + sum(v.nbytes for v in batch.layers.values()))


class CostModel:
    """Estimated object-store bytes of a batch in flight through a chain of `stages` stages:
    its input frames (when put) plus each stage's output, at the largest output/input ratio
    seen so far (2 until a result says more).
    """

    def __init__(self, stages: int, ratio: float = 2.0) -> None:
        self.stages = stages
        self.ratio = ratio

    def batch(self, in_bytes: int, stages: int | None = None, with_input: bool = True) -> int:
        """Cost of a batch of `in_bytes` going through the last `stages` stages (default: all)."""
        n = self.stages if stages is None else stages
        return int(in_bytes * ((1 if with_input else 0) + n * self.ratio))

    def flush_from(self, stage: int, in_bytes: int) -> int:
        """Cost of what stage `stage` flushes (sized like the last input), through the rest."""
        return self.batch(in_bytes, self.stages - stage, with_input=False)

    def flush(self, in_bytes: int) -> int:
        """Cost of flushing every stage."""
        return sum(self.flush_from(i, in_bytes) for i in range(self.stages))

    def observe(self, out: FrameBatch, in_bytes: int) -> None:
        """Grow the ratio to what a finished batch shows."""
        self.ratio = max(self.ratio, batch_nbytes(out) / max(1, in_bytes))
