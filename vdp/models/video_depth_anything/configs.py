"""Size presets of Video Depth Anything, as tables (the model classes hold no presets).

`ENCODERS` gives the DINOv2 backbone of each encoder name, `INTERMEDIATE_LAYERS` the blocks
whose outputs feed the head, and `MODEL_CONFIGS` the `VideoDepthAnything` constructor
keywords of each official checkpoint in `vdp.models.weights.CHECKPOINTS`. `WINDOWING` holds
the constants of the official windowed procedure.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ENCODERS: dict[str, dict[str, int]] = {
    "vits": {"embed_dim": 384, "depth": 12, "num_heads": 6},
    "vitb": {"embed_dim": 768, "depth": 12, "num_heads": 12},
    "vitl": {"embed_dim": 1024, "depth": 24, "num_heads": 16},
}

INTERMEDIATE_LAYERS: dict[str, list[int]] = {
    "vits": [2, 5, 8, 11],
    "vitb": [2, 5, 8, 11],
    "vitl": [4, 11, 17, 23],
}

_SIZES: dict[str, dict[str, Any]] = {
    "vits": {"encoder": "vits", "features": 64, "out_channels": [48, 96, 192, 384]},
    "vitb": {"encoder": "vitb", "features": 128, "out_channels": [96, 192, 384, 768]},
    "vitl": {"encoder": "vitl", "features": 256, "out_channels": [256, 512, 1024, 1024]},
}

_COMMON: dict[str, Any] = {"use_bn": False, "use_clstoken": False, "num_frames": 32, "pe": "ape"}

MODEL_CONFIGS: dict[str, dict[str, Any]] = {
    **{name: {**size, **_COMMON, "metric": False} for name, size in _SIZES.items()},
    **{f"metric_{name}": {**size, **_COMMON, "metric": True} for name, size in _SIZES.items()},
}


def model_config(name: str) -> dict[str, Any]:
    """Constructor keywords of the checkpoint `name` (e.g. ``vits``, ``metric_vitl``).

    Raises:
        ValueError: Unknown name; the message lists the known ones.
    """
    try:
        cfg = MODEL_CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown Video Depth Anything model {name!r}; "
                         f"known: {', '.join(MODEL_CONFIGS)}") from None
    return {k: (list(v) if isinstance(v, list) else v) for k, v in cfg.items()}


@dataclass(frozen=True)
class Windowing:
    """The official long-video procedure's constants (INFER_LEN, OVERLAP, KEYFRAMES, INTERP_LEN).

    Attributes:
        infer_len: Frames per window (the model's ``num_frames``).
        overlap: Leading slots of a window taken from the previous window.
        keyframes: Previous-window slots copied into those leading slots.
        interp_len: Overlap frames cross-faded between windows.
    """

    infer_len: int = 32
    overlap: int = 10
    keyframes: tuple[int, ...] = (0, 12, 24, 25, 26, 27, 28, 29, 30, 31)
    interp_len: int = 8

    @property
    def stride(self) -> int:
        """Frames between window starts (22)."""
        return self.infer_len - self.overlap

    @property
    def align_len(self) -> int:
        """Keyframe slots used for the scale/shift fit (2)."""
        return self.overlap - self.interp_len


WINDOWING = Windowing()
