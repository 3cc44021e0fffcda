"""Robust Video Matting (RVM), reimplemented with the official checkpoint layout."""
from vdp.models.rvm.loading import load_model
from vdp.models.rvm.model import REFINERS, VARIANTS, MattingNetwork, auto_downsample_ratio

__all__ = ["REFINERS", "VARIANTS", "MattingNetwork", "auto_downsample_ratio", "load_model"]
