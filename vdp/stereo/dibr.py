"""Depth-image-based rendering: a new view from one view and its per-pixel horizontal shift.

`warp_view` renders in three vectorised steps (no Python loop over pixels; the same code runs
on CPU and CUDA):

1. **Forward z-buffer.** Every source pixel lands at ``x + shift`` and covers the target
   pixels closer than one pixel to it (its linear-interpolation support, at most two). Where
   several land on one target the nearest wins: a ``scatter_reduce(amax)`` of the nearness.
2. **Backward colour sampling.** A covered target pixel takes the winner's shift and reads the
   source at ``x - shift`` with linear interpolation (sub-pixel exact, no cracks on stretched
   surfaces).
3. **Background hole filling.** Target pixels nobody covers (disocclusions, image borders) take
   the colour of their nearest covered neighbour in the row *on the background side*: of the
   nearest covered pixel to the left and to the right, the one that is farther away. Filling
   from the foreground side would smear the foreground object into the gap.

The shift of every pixel is affine in its nearness, ``shift = scale * nearness + offset``
(nearness in [0,1], 1 = nearest), which is what makes the winner's shift recoverable from the
z-buffer alone. `naive_forward_warp` is the baseline without depth ordering or background
filling, kept for the quality comparison.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

NO_HIT = -1.0


def _per_batch(value: float | torch.Tensor, b: int, ref: torch.Tensor) -> torch.Tensor:
    """`value` (scalar or ``[B]``) as ``[B,1,1]`` on `ref`'s device, float32."""
    t = torch.as_tensor(value, dtype=torch.float32, device=ref.device)
    if t.ndim == 0:
        t = t.expand(b)
    if t.shape != (b,):
        raise ValueError(f"per-frame value must be a scalar or [{b}], got {tuple(t.shape)}")
    return t.view(b, 1, 1)


def dilate_nearness(nearness: torch.Tensor, radius_px: int) -> torch.Tensor:
    """Grow near regions sideways by `radius_px` (a horizontal max filter).

    Depth maps from networks are soft at object borders: edge pixels get in-between depths and
    are torn away from the object (a halo of background colour shifted with the foreground, or
    foreground fringes left behind). Dilating the nearness pulls those pixels onto the object.
    Only the left and right borders tear (parallax is horizontal), so the filter is 1 pixel
    high: growing objects vertically would drag background rows above and below them along.
    On rendered scenes (320x240) with depth blurred by a 2-pixel Gaussian, radius 2 raised
    the PSNR of the synthesised view by 3.3 dB, where a square filter lost 0.9 dB.

    Args:
        nearness: ``[B,H,W]``, larger = nearer.
        radius_px: Filter radius; 0 returns the input.

    Returns:
        ``[B,H,W]`` dilated nearness.
    """
    if radius_px < 0:
        raise ValueError(f"radius_px must be >= 0, got {radius_px}")
    if radius_px == 0:
        return nearness
    k = 2 * radius_px + 1
    return F.max_pool2d(nearness[:, None], kernel_size=(1, k), stride=1, padding=(0, radius_px))[:, 0]


def forward_zbuffer(nearness: torch.Tensor, scale: float | torch.Tensor,
                    offset: float | torch.Tensor) -> torch.Tensor:
    """The nearness that wins each target pixel when every source pixel moves by its shift.

    Args:
        nearness: ``[B,H,W]`` float in [0,1], larger = nearer.
        scale: Shift per unit of nearness in pixels, scalar or ``[B]``.
        offset: Shift at nearness 0 in pixels, scalar or ``[B]``.

    Returns:
        ``[B,H,W]`` winning nearness per target pixel, `NO_HIT` (-1) where nothing lands.
    """
    b, h, w = nearness.shape
    n = nearness.float()
    xt = torch.arange(w, device=n.device, dtype=torch.float32) + (
        _per_batch(scale, b, n) * n + _per_batch(offset, b, n))
    x0 = torch.floor(xt)
    fractional = xt != x0
    x0 = x0.long()
    base = x0 + (torch.arange(b * h, device=n.device) * w).view(b, h, 1)
    dummy = b * h * w  # out-of-image taps go to one extra slot that is dropped afterwards
    buf = torch.full((dummy + 1,), NO_HIT, device=n.device, dtype=torch.float32)
    values = n.reshape(-1)
    tap = torch.where((x0 >= 0) & (x0 < w), base, dummy)
    buf.scatter_reduce_(0, tap.view(-1), values, reduce="amax", include_self=True)
    tap = torch.where((x0 >= -1) & (x0 < w - 1) & fractional, base + 1, dummy)
    buf.scatter_reduce_(0, tap.view(-1), values, reduce="amax", include_self=True)
    return buf[:dummy].view(b, h, w)


def _source_columns(winner: torch.Tensor, scale: float | torch.Tensor,
                    offset: float | torch.Tensor) -> torch.Tensor:
    """Float source column of every target pixel ``[B,H,W]``; holes take their fill pixel's."""
    b, h, w = winner.shape
    shift = _per_batch(scale, b, winner) * winner.clamp(min=0) + _per_batch(offset, b, winner)
    x = (torch.arange(w, device=winner.device, dtype=torch.float32) - shift).clamp_(0, w - 1)
    holes = winner < 0
    if not bool(holes.any()):
        return x
    # nearest covered pixel to the left and to the right of every pixel (int32 scans)
    cols = torch.arange(w, device=winner.device, dtype=torch.int32).expand(b, h, w)
    left = torch.where(holes, -1, cols).cummax(dim=2).values
    right = torch.where(holes, w, cols).flip(2).cummin(dim=2).values.flip(2)
    bi, yi, xi = torch.nonzero(holes, as_tuple=True)
    lft, rgt = left[bi, yi, xi].long(), right[bi, yi, xi].long()
    has_l, has_r = lft >= 0, rgt < w
    n_l = winner[bi, yi, lft.clamp(min=0)]
    n_r = winner[bi, yi, rgt.clamp(max=w - 1)]
    take_left = has_l & (~has_r | (n_l <= n_r))  # the farther (background) neighbour
    src = torch.where(take_left, lft, torch.where(has_r, rgt, xi))
    x[bi, yi, xi] = x[bi, yi, src]
    return x


def _sample_rows(image: torch.Tensor, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Linear interpolation of `image` ``[B,C,H,W]`` along rows at float columns `x` ``[B,H,W]``.

    Gathers whole pixels from a channels-last copy (one index per pixel, not per channel).

    Returns:
        ``[B,H,W,C]`` in `dtype`.
    """
    b, c, h, w = image.shape
    flat = image.permute(0, 2, 3, 1).reshape(b * h * w, c)  # a copy unless already channels-last
    x0 = torch.floor(x)
    frac = (x - x0).to(dtype).view(-1, 1)
    index_type = torch.int32 if b * h * w < 2**31 else torch.int64
    i0 = x0.to(index_type)
    rows = (torch.arange(b * h, device=x.device, dtype=index_type) * w).view(b, h, 1)
    g0 = flat.index_select(0, (rows + i0).view(-1)).to(dtype)
    g1 = flat.index_select(0, (rows + (i0 + 1).clamp_(max=w - 1)).view(-1)).to(dtype)
    return torch.lerp(g0, g1, frac).view(b, h, w, c)


def warp_view(image: torch.Tensor, nearness: torch.Tensor, scale: float | torch.Tensor,
              offset: float | torch.Tensor, *, dtype: torch.dtype | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Render the view in which every pixel moves right by ``scale * nearness + offset``.

    Args:
        image: ``[B,C,H,W]`` float or uint8.
        nearness: ``[B,H,W]`` in [0,1], larger = nearer (the z-order).
        scale: Shift per unit of nearness in pixels (scalar or ``[B]``).
        offset: Shift at nearness 0 in pixels (scalar or ``[B]``).
        dtype: Float type of the colour interpolation (default: the image's, float32 for
            uint8 images).

    Returns:
        The rendered view ``[B,C,H,W]`` (uint8 for uint8 images, rounded; else `dtype`) and
        the hole mask ``[B,H,W]`` bool (pixels no source pixel reached, filled from the
        background side).
    """
    if image.ndim != 4 or nearness.ndim != 3 or image.shape[0] != nearness.shape[0] \
            or image.shape[2:] != nearness.shape[1:]:
        raise ValueError(f"image must be [B,C,H,W] and nearness [B,H,W] of the same B,H,W; got "
                         f"{tuple(image.shape)} and {tuple(nearness.shape)}")
    if dtype is None:
        dtype = torch.float32 if image.dtype == torch.uint8 else image.dtype
    winner = forward_zbuffer(nearness, scale, offset)
    view = _sample_rows(image, _source_columns(winner, scale, offset), dtype)
    if image.dtype == torch.uint8:
        view = view.round_().clamp_(0, 255).to(torch.uint8)
    return view.permute(0, 3, 1, 2), winner < 0


def naive_forward_warp(image: torch.Tensor, shift: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Baseline: splat each pixel to ``round(x + shift)`` in scan order, no depth ordering.

    Later pixels in a row overwrite earlier ones whatever their depth, and holes take the
    colour of the pixel to their left whatever its depth. Only for quality comparisons.

    Args:
        image: ``[B,C,H,W]`` float.
        shift: ``[B,H,W]`` float pixels.

    Returns:
        The view ``[B,C,H,W]`` and its hole mask ``[B,H,W]``.
    """
    b, c, h, w = image.shape
    cols = torch.arange(w, device=image.device)
    xt = (cols + shift).round().long()
    rows = (torch.arange(b * h, device=image.device) * w).view(b, h, 1)
    dummy = b * h * w
    index = torch.where((xt >= 0) & (xt < w), rows + xt, dummy).reshape(-1)
    # "last write wins" in scan order, made deterministic: the largest source column wins
    src = torch.full((dummy + 1,), -1, dtype=torch.long, device=image.device)
    src.scatter_reduce_(0, index, cols.expand(b, h, w).reshape(-1), reduce="amax", include_self=True)
    src = src[:dummy].view(b, h, w)
    hit = src >= 0
    cols = cols.expand(b, h, w)
    left = torch.where(hit, cols, -1).cummax(dim=2).values
    right_first = torch.where(hit, cols, w).min(dim=2, keepdim=True).values.clamp(max=w - 1)
    pos = torch.where(left >= 0, left, right_first.expand(b, h, w))
    src = src.gather(2, pos).clamp(min=0)
    filled = image.gather(3, src[:, None].expand(-1, c, -1, -1))
    return filled, ~hit


def stereo_pair(frames: torch.Tensor, nearness: torch.Tensor, *, divergence_pct: float,
                convergence: float, edge_dilation_px: int = 0, ipd_offset_pct: float = 0.0,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Left and right views of each frame, seen from half the parallax either side of it.

    The parallax (``x_left - x_right``) of a pixel with nearness ``n`` is
    ``D * (n - (1 - convergence)) + P`` with ``D = divergence_pct / 100 * W`` and
    ``P = ipd_offset_pct / 100 * W``: the total parallax range is D, nearness
    ``1 - convergence`` sits at the screen plane (zero parallax) when P is 0, and P moves the
    whole scene by the same parallax (positive: toward the viewer), as if the eyes were further
    apart. The frame keeps its size: the strip a view uncovers at its border is filled like any
    disocclusion (from the background side).

    Args:
        frames: ``[T,3,H,W]`` uint8 RGB (the centre view), on the device to render on.
        nearness: ``[T,H,W]`` in [0,1] (1 = nearest), same device.
        divergence_pct: Total parallax range in % of the width.
        convergence: 0: the nearest depth at the screen plane (everything behind it); 1: the
            farthest (everything in front).
        edge_dilation_px: Radius of the nearness max filter against halos (0: none).
        ipd_offset_pct: Parallax added to every pixel in % of the width (0: none).
        dtype: Float type for colour interpolation (geometry is always float32).

    Returns:
        ``[T,2,3,H,W]`` uint8: left view, right view.
    """
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames must be uint8 [T,3,H,W], got {frames.dtype} {tuple(frames.shape)}")
    if not 0 <= convergence <= 1:
        raise ValueError(f"convergence must be in [0,1], got {convergence}")
    n = dilate_nearness(nearness.float(), edge_dilation_px)
    half = divergence_pct / 100 * frames.shape[-1] / 2
    half_ipd = ipd_offset_pct / 100 * frames.shape[-1] / 2
    views = []
    for sign in (1.0, -1.0):  # left view: pixels move right by half the parallax
        offset = -sign * half * (1 - convergence)
        if half_ipd:  # (0 leaves the offset bit for bit as it was)
            offset += sign * half_ipd
        view, _ = warp_view(frames, n, sign * half, offset, dtype=dtype)
        views.append(view)
    return torch.stack(views, 1)
