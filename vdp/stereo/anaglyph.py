"""Red-cyan anaglyphs by Dubois's least-squares method.

Dubois (2001, "A projection method to generate anaglyph stereo images") chooses the 3x3
matrices that map a stereo pair to one RGB image so that, seen through red-cyan filters, each
eye's perceived colour is the least-squares closest to the original view's. The matrices
below are his published values for red-cyan glasses. They act on linear-light RGB, so the
sRGB transfer function is undone before and re-applied after.
"""
from __future__ import annotations

import numpy as np
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


#: Steps of linear light in the encoding table (near black one step moves sRGB ~0.05 levels).
ENCODE_STEPS = 65535
_TO_LINEAR = srgb_to_linear(torch.arange(256, dtype=torch.float64) / 255).float()
_TO_SRGB = (linear_to_srgb(torch.arange(ENCODE_STEPS + 1, dtype=torch.float64) / ENCODE_STEPS) * 255
            ).round().to(torch.uint8)


def anaglyph_dubois(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Red-cyan anaglyph of a stereo pair.

    On the CPU through tables (sRGB to linear per 8-bit value, linear to sRGB per 1/65535 of
    linear light) and one 3x6 matrix product per frame: within one level of the float
    formula (`anaglyph_float`), ~15x less CPU.

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
    if left.device.type != "cpu" or right.device.type != "cpu":
        return anaglyph_float(left, right)
    t, _, h, w = left.shape
    mix = torch.tensor(np.concatenate([DUBOIS_RED_CYAN_LEFT, DUBOIS_RED_CYAN_RIGHT], axis=1),
                       dtype=torch.float32)
    out = torch.empty((t, 3, h, w), dtype=torch.uint8)
    lin, mixed = np.empty((6, h * w), np.float32), np.empty((3, h * w), np.float32)
    index = np.empty(h * w, np.int32)
    lin_t, mixed_t, index_t = torch.from_numpy(lin), torch.from_numpy(mixed), torch.from_numpy(index)
    for i in range(t):  # one frame at a time (see vdp.outputs._pixels)
        for k, view in enumerate((left[i].numpy(), right[i].numpy())):
            for c in range(3):
                np.copyto(index.reshape(h, w), view[c])          # any memory layout
                torch.index_select(_TO_LINEAR, 0, index_t, out=lin_t[3 * k + c])
        torch.mm(mix, lin_t, out=mixed_t)
        np.clip(mixed, 0.0, 1.0, out=mixed)
        np.multiply(mixed, np.float32(ENCODE_STEPS), out=mixed)
        np.add(mixed, np.float32(0.5), out=mixed)
        for c in range(3):
            np.copyto(index, mixed[c], casting="unsafe")          # truncating x + 0.5 rounds
            torch.index_select(_TO_SRGB, 0, index_t, out=out[i, c].view(-1))
    return out


def anaglyph_float(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """`anaglyph_dubois` in float arithmetic on the tensors' device (the formula as written)."""
    lut = srgb_to_linear(torch.arange(256, dtype=torch.float32, device=left.device) / 255)
    ml = torch.tensor(DUBOIS_RED_CYAN_LEFT, dtype=torch.float32, device=left.device)
    mr = torch.tensor(DUBOIS_RED_CYAN_RIGHT, dtype=torch.float32, device=left.device)
    lin_l = lut[left.long()]
    lin_r = lut[right.long()]
    out = torch.einsum("oc,tchw->tohw", ml, lin_l) + torch.einsum("oc,tchw->tohw", mr, lin_r)
    return (linear_to_srgb(out) * 255).round().to(torch.uint8)
