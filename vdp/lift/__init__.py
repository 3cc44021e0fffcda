"""Lifting 2D image positions to camera-space 3D with per-frame depth (pinhole intrinsics)."""
from vdp.lift.camera import Intrinsics, intrinsics_for

__all__ = ["Intrinsics", "intrinsics_for"]
