"""vdp: depth, mattes and VR-ready media from ordinary videos, at scale.

Importing `vdp` (and `vdp.client`) needs neither torch nor Ray; the value types that hold
tensors load on first use.
"""
from typing import Any

from vdp.errors import DecodeError, EncodeError, SpecError, StageError, VdpError, WeightsError
from vdp.spec import JobSpec

__version__ = "0.1.0"
__all__ = ["DecodeError", "EncodeError", "FrameBatch", "JobSpec", "SpecError", "StageError",
           "VdpError", "VideoInfo", "WeightsError", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("FrameBatch", "VideoInfo"):
        from vdp import types

        return getattr(types, name)
    raise AttributeError(f"module 'vdp' has no attribute {name!r}")
