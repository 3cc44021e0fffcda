"""Robust Video Matting (RVM), reimplemented with the official checkpoint layout."""
from vdp.models.rvm.model import REFINERS, VARIANTS, MattingNetwork, auto_downsample_ratio

__all__ = ["REFINERS", "VARIANTS", "MattingNetwork", "auto_downsample_ratio"]
