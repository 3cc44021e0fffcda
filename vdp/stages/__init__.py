"""Model stages on the Stage contract (no Ray inside); each is listed in `vdp.catalog`."""
from vdp.stages.base import Fallback, Stage, StageReport

__all__ = ["Fallback", "Stage", "StageReport"]
