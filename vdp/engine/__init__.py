"""Execution engine: runners that drive stage chains in-process or on Ray."""
from vdp.engine.local import LocalRunner
from vdp.engine.plan import StagePlan
from vdp.engine.progress import ProgressTracker, StageProgress

__all__ = ["LocalRunner", "ProgressTracker", "StagePlan", "StageProgress"]
