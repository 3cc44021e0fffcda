"""Metrics and the baseline filters on inputs with known answers."""
from __future__ import annotations

import math

import pytest
import torch

from vdp.refiner.baselines import ema, robust_scan_filter, temporal_bilateral
from vdp.refiner.metrics import MetricSums, static_mask


def test_depth_errors_known_values():
    gt = torch.full((3, 4, 4), 2.0)
    m = MetricSums()
    m.add_depth(gt * 1.1, gt, gt > 0)
    r = m.result()
    assert r["abs_rel"] == pytest.approx(0.1)
    assert r["rmse"] == pytest.approx(0.2)
    assert r["delta1"] == 1.0
    m2 = MetricSums()
    m2.add_depth(gt * 1.3, gt, gt > 0)
    assert m2.result()["delta1"] == 0.0


def test_flicker_counts_only_static_pixels():
    gt = torch.full((4, 2, 2), 3.0)
    gt[:, 0, 0] = torch.tensor([1.0, 2.0, 3.0, 4.0])       # a moving pixel
    static = static_mask(gt, gt > 0)
    assert not bool(static[:, 0, 0].any()) and bool(static[:, 1, 1].all())
    pred = gt.clone()
    pred[1::2] *= math.exp(0.01)                           # flicker of 0.01 in log depth
    m = MetricSums()
    m.add_flicker(pred, static)
    assert m.result()["flicker"] == pytest.approx(0.01, rel=1e-6)


def test_filters_keep_constants_and_reduce_noise():
    g = torch.Generator().manual_seed(0)
    const = torch.full((20, 3, 3), 2.5)
    torch.testing.assert_close(ema(const, 0.8), const)
    torch.testing.assert_close(temporal_bilateral(const, 3, 2.0, 0.05), const)
    noisy = const * torch.exp(0.02 * torch.randn(20, 3, 3, generator=g))
    flick = lambda d: float((torch.log(d[1:]) - torch.log(d[:-1])).abs().mean())  # noqa: E731
    assert flick(ema(noisy, 0.8)) < 0.5 * flick(noisy)
    assert flick(temporal_bilateral(noisy, 4, math.inf, math.inf)) < 0.5 * flick(noisy)
    step = torch.cat([torch.full((10, 1, 1), 1.0), torch.full((10, 1, 1), 4.0)])
    kept = temporal_bilateral(step, 3, math.inf, 0.01)      # range kernel keeps the edge
    torch.testing.assert_close(kept, step)


def test_robust_scan_keeps_constants_smooths_flicker_and_resets_at_a_step():
    g = torch.Generator().manual_seed(1)
    const = torch.full((20, 3, 3), 2.5)
    torch.testing.assert_close(robust_scan_filter(const, 0.9, 0.1), const)
    noisy = const * torch.exp(0.02 * torch.randn(20, 3, 3, generator=g))
    flick = lambda d: float((torch.log(d[1:]) - torch.log(d[:-1])).abs().mean())  # noqa: E731
    assert flick(robust_scan_filter(noisy, 0.9, 0.2)) < 0.3 * flick(noisy)
    step = torch.cat([torch.full((10, 1, 1), 1.0), torch.full((10, 1, 1), 4.0)])
    kept = robust_scan_filter(step, 0.9, 0.05)             # a jump far beyond sigma resets
    torch.testing.assert_close(kept, step, rtol=1e-4, atol=0)
    smeared = robust_scan_filter(step, 0.9, math.inf)      # no reset: a plain two-sided average
    assert 1.2 < float(smeared[9, 0, 0]) < 3.5
