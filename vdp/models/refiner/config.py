"""Refiner sizes and window pattern: a table of presets, saved inside every checkpoint."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from vdp.errors import WeightsError


@dataclass(frozen=True)
class RefinerConfig:
    """Architecture and window pattern of a refiner (training and inference share it).

    Attributes:
        downsample: The network runs at 1/downsample of the teacher's resolution.
        enc_channels: Widths of the three encoder convolutions.
        d_inner: Hidden channels of each selective scan.
        d_state: State size per hidden channel.
        dt_rank: Rank of the step-size projection.
        ssm_layers: Bidirectional scan layers.
        dec_channels: Width of the decoder's hidden convolution.
        alpha: Relative part of the residual bound ``|dD| <= alpha * D + beta``.
        beta: Absolute part of the bound (depth units; relative input is normalised to ~1).
        window_frames: Frames per window (N).
        overlap_frames: Frames shared by consecutive windows.
        keyframes: Positions, in the N frames before a window, of the context frames that
            are scanned ahead of the window (long-range memory).
        rgb: The model also reads the video's RGB frames: low-resolution colour, luma edges
            and temporal colour change (a motion / occlusion cue) as encoder inputs, and the
            per-pixel colour change as a reset gate of the full-resolution smoother (motion
            gating: what moves is not smoothed into what it passes).
    """

    downsample: int = 4
    enc_channels: tuple[int, int, int] = (32, 48, 48)
    d_inner: int = 64
    d_state: int = 8
    dt_rank: int = 4
    ssm_layers: int = 1
    dec_channels: int = 32
    alpha: float = 0.1
    beta: float = 0.05
    window_frames: int = 12
    overlap_frames: int = 6
    keyframes: tuple[int, ...] = field(default=(0, 4, 8))
    rgb: bool = False

    @property
    def stride_frames(self) -> int:
        """Frames between the starts of consecutive windows."""
        return self.window_frames - self.overlap_frames

    @property
    def context_frames(self) -> int:
        return len(self.keyframes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RefinerConfig":
        """Inverse of `to_dict`; unknown keys raise `WeightsError` (a checkpoint from elsewhere)."""
        known = set(cls.__dataclass_fields__)
        extra = sorted(set(data) - known)
        if extra:
            raise WeightsError(f"refiner config has unknown fields {extra}; known: {sorted(known)}")
        data = dict(data)
        for key in ("enc_channels", "keyframes"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


#: ``(frames, overlap)`` of the windows the shipped v1 runs on (it trained on 12 every 6).
RUN_WINDOWS = (32, 8)


def with_windows(config: RefinerConfig, frames: int, overlap: int) -> RefinerConfig:
    """`config` running windows of `frames` frames that share `overlap` frames.

    The network's weights do not depend on the window pattern (its scans and its scale lock
    take any length), so a refiner trained on one pattern can run on another. The context
    keyframes keep their distance before the window's first frame (v1: 12, 8 and 4 frames).

    Raises:
        ValueError: `frames` < 2, `overlap` outside ``[0, frames)``, or fewer frames than the
            context keyframes reach back.
    """
    reach = config.window_frames - min(config.keyframes) if config.keyframes else 0
    if frames < 2 or not 0 <= overlap < frames or frames < reach:
        raise ValueError(f"refiner windows need frames >= max(2, {reach}) and 0 <= overlap < frames, "
                         f"got frames={frames}, overlap={overlap}")
    shift = frames - config.window_frames
    return replace(config, window_frames=frames, overlap_frames=overlap,
                   keyframes=tuple(k + shift for k in config.keyframes))


#: Named sizes. ``v0`` reads depth only; ``v1`` (the shipped model) also reads RGB and has a
#: wider residual bound (alpha 0.3): at 0.1 the bound held back its per-pixel smoother on edge
#: shimmer, and the retrain at 0.3 lowered TAE in six of seven teacher families (README).
PRESETS: dict[str, RefinerConfig] = {"v0": RefinerConfig(), "v1": RefinerConfig(rgb=True, alpha=0.3)}
