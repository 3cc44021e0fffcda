"""Red-cyan anaglyphs by Dubois's least-squares method.

Dubois (2001, "A projection method to generate anaglyph stereo images") chooses the 3x3
matrices that map a stereo pair to one RGB image so that, seen through red-cyan filters, each
eye's perceived colour is the least-squares closest to the original view's. The matrices
below are his published values for red-cyan glasses. They act on linear-light RGB, so the
sRGB transfer function is undone before and re-applied after.
"""
from __future__ import annotations

import torch

#: Dubois's red-cyan matrices (rows: output R, G, B; columns: input R, G, B).
DUBOIS_RED_CYAN_LEFT: tuple[tuple[float, float, float], ...] = (
    (0.456, 0.500, 0.176),
    (-0.040, -0.038, -0.016),
    (-0.015, -0.021, -0.005),
)
DUBOIS_RED_CYAN_RIGHT: tuple[tuple[float, float, float], ...] = (
    (-0.043, -0.088, -0.002),
    (0.378, 0.734, -0.018),
    (-0.072, -0.113, 1.226),
)


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """sRGB-encoded values in [0,1] to linear light."""
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """Linear light in [0,1] to sRGB-encoded values."""
    x = x.clamp(0, 1)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)


def anaglyph_dubois(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Red-cyan anaglyph of a stereo pair.

    Args:
        left: ``[T,3,H,W]`` uint8 RGB (seen by the red-filtered eye).
        right: ``[T,3,H,W]`` uint8 RGB (seen by the cyan-filtered eye).

    Returns:
        ``[T,3,H,W]`` uint8 RGB.
    """
    if left.dtype != torch.uint8 or right.dtype != torch.uint8 or left.shape != right.shape \
            or left.ndim != 4 or left.shape[1] != 3:
        raise ValueError(f"left and right must be uint8 [T,3,H,W] of one shape, got {left.dtype} "
                         f"{tuple(left.shape)} and {right.dtype} {tuple(right.shape)}")
    lut = srgb_to_linear(torch.arange(256, dtype=torch.float32, device=left.device) / 255)
    ml = torch.tensor(DUBOIS_RED_CYAN_LEFT, dtype=torch.float32, device=left.device)
    mr = torch.tensor(DUBOIS_RED_CYAN_RIGHT, dtype=torch.float32, device=left.device)
    lin_l = lut[left.long()]
    lin_r = lut[right.long()]
    out = torch.einsum("oc,tchw->tohw", ml, lin_l) + torch.einsum("oc,tchw->tohw", mr, lin_r)
    return (linear_to_srgb(out) * 255).round().to(torch.uint8)
