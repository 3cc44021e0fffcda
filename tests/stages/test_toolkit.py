"""The helpers every model stage shares: precision to autocast, the fallback record."""
from __future__ import annotations

import pytest
import torch

from vdp.errors import SpecError
from vdp.stages.base import Fallback, StageReport
from vdp.stages.toolkit import autocast, autocast_dtype, precision_name, weights_label

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_autocast_dtype_rules():
    assert autocast_dtype("auto", CPU) is None and autocast_dtype("auto", CUDA) == torch.float16
    assert autocast_dtype("auto", CUDA, auto=None) is None
    assert autocast_dtype("bf16", CPU) == torch.bfloat16 and autocast_dtype("fp32", CUDA) is None
    assert autocast_dtype("fp16", CPU, on_cpu=False) is None
    assert autocast_dtype("fp16", CUDA, on_cpu=False) == torch.float16
    with pytest.raises(SpecError, match="precision must be one of auto, fp16, bf16, fp32, got 'fp8'"):
        autocast_dtype("fp8", CPU)


def test_autocast_context():
    x = torch.ones(2, 2)
    with autocast(CPU, torch.bfloat16):
        assert (x @ x).dtype == torch.bfloat16
    with autocast(CPU, None):
        assert (x @ x).dtype == torch.float32
    assert [precision_name(d) for d in (torch.float16, torch.bfloat16, None)] == ["fp16", "bf16", "fp32"]


def test_one_fallback_record_for_every_stage():
    report = StageReport()
    report.fell_back(Fallback("depth", 3, 9, "fp16", "non-finite output in fp16", window=1))
    report.fell_back(Fallback("matte", 0, 2, "bf16", "non-finite matte"))
    assert report.fallbacks == [
        {"stage": "depth", "window": 1, "first_frame": 3, "last_frame": 9, "from": "fp16", "to": "fp32",
         "reason": "non-finite output in fp16"},
        {"stage": "matte", "first_frame": 0, "last_frame": 2, "from": "bf16", "to": "fp32",
         "reason": "non-finite matte"}]
    report.warn_once("synthetic")
    report.warn_once("synthetic")
    assert report.warnings == ["synthetic"]


def test_weights_label():
    assert weights_label(None, True) == "synthetic"
    assert weights_label("/m/x.pth", False) == "/m/x.pth" and weights_label(None, False) == "official"
