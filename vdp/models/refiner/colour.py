"""What the refiner reads from the video's RGB frames (``RefinerConfig.rgb``).

Depth alone cannot tell a depth edge that flickers from one that moves, nor a surface that
slides under a pixel (camera motion) from a teacher that wobbles. Colour can: a pixel whose
colour changes from one frame to the next sees something else now, so its depth may change
for real; one whose colour holds sees the same surface, so a depth change there is the
teacher's flicker. From uint8 RGB ``[B, T, 3, H, W]``:

* colour change: per pixel, the largest channel change from the previous frame of the
  window, in [0, 1] (0 for the first frame);
* on the network's low-res grid: the centred mean colour, the luma edge magnitude (object
  boundaries the depth may not show yet) and the area mean of the colour change (how much of
  the cell moved).

All of it is computed on the window the model sees, so training and the stream agree.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vdp.models.refiner.confidence import gradient_magnitude

#: Encoder input channels added by RGB: three colour channels, luma edges, colour change.
RGB_CHANNELS = 5
#: Gains that bring luma edges and colour change to about unit range.
EDGE_GAIN = 4.0
CHANGE_GAIN = 8.0
_LUMA = (0.2126, 0.7152, 0.0722)


class RefinerInputError(ValueError):
    """The refiner was given inputs that do not match its configuration."""


def check_rgb(rgb: torch.Tensor, depth_shape: torch.Size) -> None:
    """Refuse RGB that is not ``[B, T, 3, H, W]`` for depth ``[B, T, H, W]``."""
    b, t, h, w = depth_shape
    if rgb.ndim != 5 or tuple(rgb.shape) != (b, t, 3, h, w):
        raise RefinerInputError(f"refiner RGB must be [B, T, 3, H, W] = {[b, t, 3, h, w]} to match "
                                f"the depth, got {list(rgb.shape)}")


def unit_rgb(frames: torch.Tensor) -> torch.Tensor:
    """Float RGB in [0, 1] from uint8 (float input is taken as already in [0, 1])."""
    return frames.float() / 255.0 if frames.dtype == torch.uint8 else frames.float()


def colour_inputs(rgb: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder inputs and per-pixel colour change of a window.

    Works one frame at a time, so a 1080p window never exists as float RGB at once.

    Args:
        rgb: uint8 (or unit float) ``[B, T, 3, H, W]``.
        size: The network's low-res grid ``(h, w)``.

    Returns:
        ``[B, T, RGB_CHANNELS, h, w]`` (centred mean colour, luma edges, cell share of colour
        change) and the colour change ``[B, T, H, W]`` in [0, 1] (largest channel change from
        the previous frame of the window; 0 for its first frame).
    """
    b, t, _, hh, ww = rgb.shape
    change = torch.zeros(b, t, hh, ww, device=rgb.device)
    low = []
    prev = None
    for i in range(t):
        frame = unit_rgb(rgb[:, i])                                              # [B, 3, H, W]
        if prev is not None:
            change[:, i] = (frame - prev).abs().amax(dim=1)
        prev = frame
        low.append(F.adaptive_avg_pool2d(frame, size))
    colour = torch.stack(low, dim=1).flatten(0, 1)                             # [BT, 3, h, w]
    luma = sum(k * colour[:, i] for i, k in enumerate(_LUMA))                  # [BT, h, w]
    edges = gradient_magnitude(luma, eps=1e-12) * EDGE_GAIN
    moved = F.adaptive_avg_pool2d(change.flatten(0, 1)[:, None], size)[:, 0] * CHANGE_GAIN
    feats = torch.cat([colour - 0.5, edges[:, None], moved[:, None]], dim=1)
    return feats.reshape(b, t, RGB_CHANNELS, *size), change
