"""Running the refiner on depth: model call per window, and metric/relative conversion."""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Literal

import torch

from vdp.models.refiner.colour import RefinerInputError
from vdp.models.refiner.confidence import derive_confidence
from vdp.models.refiner.model import Refiner
from vdp.refiner.depth_kind import from_pseudo_depth, reference_scale, to_pseudo_depth
from vdp.refiner.windows import WORK_PIXELS, WindowFn, key_mask, refine_sequence

DepthKind = Literal["metric", "relative"]


def make_window_fn(model: Refiner, *, use_confidence: bool = True, blend: float = 1.0,
                   device: torch.device | str = "cpu",
                   autocast_dtype: torch.dtype | None = None) -> WindowFn:
    """A `WindowFn` that runs `model` on one window (batch of 1, no grad).

    Args:
        model: The refiner, already on `device`.
        use_confidence: Feed the derived confidence (False: run without it).
        blend: Share of the log residual kept (0: teacher unchanged, 1: full correction).
        device: Where the model lives.
        autocast_dtype: fp16/bf16 autocast on CUDA, or None for float32.

    Returns:
        Function ``([K+N, H, W], start, RGB [K+N, 3, H, W] uint8 or unit float, or None) ->
        [N, H, W]`` (log residual, float32, on the input's device).

    Raises:
        RefinerInputError: (when called) an RGB refiner gets no RGB.
    """
    if not 0.0 <= blend <= 1.0:
        raise ValueError(f"blend must be in [0, 1], got {blend}")
    device = torch.device(device)
    keys = key_mask(model.config).to(device)
    k = model.config.context_frames

    def run(depth: torch.Tensor, start: int = 0, rgb: torch.Tensor | None = None) -> torch.Tensor:
        x = depth[None].to(device, torch.float32)
        frames = None if rgb is None or not model.config.rgb else rgb[None].to(device)
        conf = derive_confidence(x, model.config.downsample) if use_confidence else None
        ctx = (torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None
               else nullcontext())
        with torch.no_grad(), ctx:
            rho = model(x, conf, keys, frames).rho
        rho = rho[0, k:].float()
        return (rho if blend == 1.0 else blend * rho).to(depth.device)

    return run


@dataclass
class PositiveDepth:
    """A depth stream mapped to the refiner's positive input, and how to map back.

    Attributes:
        kind: ``metric`` (used as is) or ``relative`` (pseudo depth of disparity).
        m0: Reference scale of a relative stream (median of its first frame).
    """

    kind: DepthKind
    m0: float = 1.0

    @classmethod
    def start(cls, kind: DepthKind, first_frame: torch.Tensor) -> "PositiveDepth":
        return cls(kind, reference_scale(first_frame) if kind == "relative" else 1.0)

    def forward(self, depth: torch.Tensor) -> torch.Tensor:
        """Positive refiner input; invalid metric pixels (<= 0, non-finite) get their frame's median."""
        if self.kind == "relative":
            return to_pseudo_depth(depth, self.m0)
        d = depth.float()
        valid = torch.isfinite(d) & (d > 0)
        if bool(valid.all()):
            return d
        out = d.clone()
        for i in range(d.shape[0]):
            v = d[i][valid[i]]
            out[i][~valid[i]] = float(v.median()) if v.numel() else 1.0
        return out

    def inverse(self, refined: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
        """Refined depth in the input's kind; invalid metric pixels keep their original value."""
        if self.kind == "relative":
            return from_pseudo_depth(refined, self.m0)
        valid = torch.isfinite(original) & (original > 0)
        return torch.where(valid, refined, original.float())


def refine_depth(model: Refiner, depth: torch.Tensor, *, rgb: torch.Tensor | None = None,
                 kind: DepthKind = "metric",
                 use_confidence: bool = True, blend: float = 1.0,
                 max_frame_shift: float | None = None,
                 max_pixels: int | None = WORK_PIXELS,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """Refine a whole depth sequence ``[T, H, W]`` offline (what the stage does in a stream).

    Args:
        model: The refiner.
        depth: Teacher output: metric depth, or relative disparity for ``kind="relative"``.
        rgb: The video frames uint8 ``[T, 3, H, W]`` (an RGB refiner needs them, a depth-only
            one ignores them).
        kind: Which of the two the teacher gives.
        use_confidence: Feed the derived confidence.
        blend: Share of the refiner's log-depth correction applied.
        max_frame_shift: Do-no-harm limit on each frame's median log-depth change
            (`vdp.refiner.windows`); None: no limit.
        max_pixels: Working size limit (`vdp.refiner.windows`); None: the frames' own size.
        device: Where `model` lives.

    Returns:
        Refined ``[T, H, W]`` float32, same kind and units as `depth`.
    """
    if depth.shape[0] == 0:
        return depth.float()
    conv = PositiveDepth.start(kind, depth[0])
    fn = make_window_fn(model, use_confidence=use_confidence, blend=blend, device=device)
    if model.config.rgb and rgb is None:
        raise RefinerInputError("this refiner reads the video's RGB frames; pass rgb=[T, 3, H, W]")
    refined = refine_sequence(model.config, fn, conv.forward(depth),
                              rgb=rgb if model.config.rgb else None, max_frame_shift=max_frame_shift,
                              max_pixels=max_pixels)
    return conv.inverse(refined, depth)
