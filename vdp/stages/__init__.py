"""Model stages on the Stage contract (no Ray inside)."""
from vdp.stages.base import Stage, StageReport

__all__ = ["Stage", "StageReport"]
