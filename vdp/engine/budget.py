"""Object-store budget: how many bytes a job's in-flight batches may hold on Ray."""
from __future__ import annotations

from vdp.types import FrameBatch


class ObjectStoreBudget:
    """Bytes the job's in-flight objects may hold (estimated), with the peak reached.

    Args:
        limit_bytes: The budget.
    """

    def __init__(self, limit_bytes: int) -> None:
        self.limit = int(limit_bytes)
        self.used = 0
        self.peak = 0

    def fits(self, cost: int) -> bool:
        """Whether `cost` more bytes fit (always, when nothing is in flight)."""
        return self.used == 0 or self.used + cost <= self.limit

    def take(self, cost: int) -> None:
        """Count `cost` bytes as in flight."""
        self.used += cost
        self.peak = max(self.peak, self.used)

    def give(self, cost: int) -> None:
        """Release `cost` bytes (never below zero)."""
        self.used = max(0, self.used - cost)


def batch_nbytes(batch: FrameBatch) -> int:
    """Bytes of a batch's frames and layers (what it costs in the object store)."""
    return int(batch.frames.nbytes + sum(v.nbytes for v in batch.layers.values()))
