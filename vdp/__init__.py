"""vdp: depth, mattes and VR-ready media from ordinary videos, at scale.

Importing `vdp` (and `vdp.client`) needs neither torch nor Ray; the value types that hold
tensors load on first use.

Importing `vdp` before torch also turns on PyTorch's transparent-huge-page allocation for
large CPU tensors (``THP_MEM_ALLOC_ENABLE=1``) unless the variable is already set: full-frame
activations are hundreds of MB each, and mapping them in 4 KB pages made the kernel's page
faults cost more CPU than the models (RVM at 720p on CPU: 3.2 -> 4.2 frames/s). Set
``THP_MEM_ALLOC_ENABLE=0`` to opt out. Ray workers inherit it from the driver or set it when
they import vdp.
"""
import os
from typing import Any

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # read by torch's CPU allocator at import

from vdp.errors import DecodeError, EncodeError, SpecError, StageError, VdpError, WeightsError

__version__ = "0.1.0"
__all__ = ["DecodeError", "EncodeError", "FrameBatch", "JobSpec", "SpecError", "StageError",
           "VdpError", "VideoInfo", "WeightsError", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "JobSpec":  # pydantic: loaded on first use (`vdp probe` needs none of it)
        from vdp.spec import JobSpec

        return JobSpec
    if name in ("FrameBatch", "VideoInfo"):
        from vdp import types

        return getattr(types, name)
    raise AttributeError(f"module 'vdp' has no attribute {name!r}")
