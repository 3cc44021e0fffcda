"""What every model stage does the same way: precision to autocast, the weights label of an
actor's key (see `Stage.config_key`)."""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch

from vdp.spec import check_precision

_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": None}
_NAMES = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32", None: "fp32"}


def autocast_dtype(precision: str, device: torch.device, *, auto: torch.dtype | None = torch.float16,
                   on_cpu: bool = True) -> torch.dtype | None:
    """The reduced float type a stage computes in, or None for float32.

    Args:
        precision: ``auto``, ``fp16``, ``bf16`` or ``fp32`` (anything else: `SpecError`).
        device: Where the stage runs.
        auto: What ``auto`` means on CUDA (on other devices ``auto`` is float32).
        on_cpu: Whether an explicit ``fp16``/``bf16`` applies off CUDA too.
    """
    check_precision(precision)
    if precision == "auto":
        return auto if device.type == "cuda" else None
    if device.type != "cuda" and not on_cpu:
        return None
    return _DTYPES[precision]


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager:
    """``torch.autocast`` to `dtype` on `device`, or nothing when `dtype` is None (float32)."""
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def precision_name(dtype: torch.dtype | None) -> str:
    """``fp16``, ``bf16`` or ``fp32`` (None)."""
    return _NAMES[dtype]


def weights_label(checkpoint: str | None, synthetic: bool) -> str:
    """How a stage's weights appear in its actor key: ``synthetic``, a path or ``official``."""
    return "synthetic" if synthetic else (checkpoint or "official")
