"""vdp: depth, mattes and VR-ready media from ordinary videos, at scale."""
from vdp.errors import DecodeError, EncodeError, SpecError, StageError, VdpError, WeightsError
from vdp.spec import JobSpec
from vdp.types import FrameBatch, VideoInfo

__version__ = "0.1.0"
__all__ = ["DecodeError", "EncodeError", "FrameBatch", "JobSpec", "SpecError", "StageError",
           "VdpError", "VideoInfo", "WeightsError", "__version__"]
