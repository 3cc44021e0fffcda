"""ObjectStoreBudget: admission, peak and release; batch_nbytes counts frames and layers."""
from __future__ import annotations

import torch

from vdp.engine.budget import ObjectStoreBudget, batch_nbytes
from vdp.types import FrameBatch


def test_budget_admits_within_the_limit_and_always_one_item():
    b = ObjectStoreBudget(100)
    assert b.fits(500)  # nothing in flight: even an oversized batch goes, or the job would stall
    b.take(60)
    assert b.fits(40) and not b.fits(41)
    b.take(40)
    b.give(60)
    assert (b.used, b.peak) == (40, 100)
    b.give(1000)
    assert b.used == 0


def test_batch_nbytes_counts_frames_and_layers():
    idx = torch.arange(2)
    batch = FrameBatch(torch.zeros(2, 3, 4, 5, dtype=torch.uint8), idx, idx / 30.0,
                       {"depth": torch.zeros(2, 4, 5), "alpha": torch.zeros(2, 4, 5, dtype=torch.uint8)})
    assert batch_nbytes(batch) == 2 * 3 * 4 * 5 + 2 * 4 * 5 * 4 + 2 * 4 * 5
