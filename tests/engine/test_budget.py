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


def test_cost_model_counts_input_and_each_stage_and_grows_with_what_it_sees():
    from vdp.engine.budget import CostModel

    costs = CostModel(stages=3)
    assert costs.batch(100) == 100 + 3 * 200  # input + three outputs at twice the input
    assert costs.batch(100, stages=1, with_input=False) == 200
    assert costs.flush_from(2, 100) == 200 and costs.flush_from(0, 100) == 600
    assert costs.flush(100) == 600 + 400 + 200
    idx = torch.arange(1)
    out = FrameBatch(torch.zeros(1, 3, 4, 5, dtype=torch.uint8), idx, idx / 30.0, {"d": torch.zeros(1, 4, 5)})
    costs.observe(out, in_bytes=10)  # 140 bytes out of 10 in
    assert costs.ratio == 14.0 and costs.batch(10, stages=1, with_input=False) == 140
    costs.observe(out, in_bytes=1000)  # never shrinks
    assert costs.ratio == 14.0
