"""Reprojection consistency of depth across frames with known camera motion (a training loss).

TAE, the evaluation's consistency measure, reprojects frame a's depth into frame b with the
ground-truth poses and compares it with frame b's depth. A per-pixel temporal filter can lower
the teacher's frame-to-frame flicker at each pixel and still raise TAE: when the camera moves,
a pixel sees a different surface point every frame, and averaging over time smears what was
there before into what is there now. This loss is TAE's differentiable twin for training, in
log depth: for each pair of consecutive frames (both directions) it warps the output of frame a
into frame b and penalises ``|log z_a->b - log D_b(warped pixel)|`` on pixels where ground
truth agrees with itself after the same warp (static, co-visible, no occlusion).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

#: Ground truth must reproject within this relative error for a pixel to count (as in TAE).
GT_TOLERANCE = 0.02


@dataclass
class Geometry:
    """Camera and scene facts of a batch's target frames (training samples that have them).

    Attributes:
        intrinsics: ``[B, 3, 3]`` pinhole matrices.
        poses: Camera-to-world ``[B, F, 4, 4]``.
        dynamic: Bool ``[B, F, H, W]``, True on moving objects.
        known: Bool ``[B]``: the sample has metric geometry (False: relative-depth samples and
            clips without poses, which the loss skips).
    """

    intrinsics: torch.Tensor
    poses: torch.Tensor
    dynamic: torch.Tensor
    known: torch.Tensor


def _pairs(frames: int) -> tuple[list[int], list[int]]:
    a = list(range(frames - 1)) + list(range(1, frames))
    b = list(range(1, frames)) + list(range(frames - 1))
    return a, b


def _warp(depth_a: torch.Tensor, k: torch.Tensor, a_to_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame a's depth ``[N, H, W]`` seen from frame b: (sampling grid ``[N, H, W, 2]``, z in b)."""
    n, h, w = depth_a.shape
    v, u = torch.meshgrid(torch.arange(h, dtype=depth_a.dtype, device=depth_a.device),
                          torch.arange(w, dtype=depth_a.dtype, device=depth_a.device), indexing="ij")
    pix = torch.stack([u, v, torch.ones_like(u)], -1)                       # [H, W, 3]
    rays = pix @ torch.linalg.inv(k).transpose(-1, -2)[:, None]             # [N, H, W, 3]
    pts = rays * depth_a[..., None]
    pts_b = pts @ a_to_b[:, None, :3, :3].transpose(-1, -2) + a_to_b[:, None, None, :3, 3]
    z = pts_b[..., 2]
    proj = pts_b @ k.transpose(-1, -2)[:, None]
    uv = proj[..., :2] / z.clamp_min(1e-6)[..., None]
    grid = torch.stack([2 * uv[..., 0] / (w - 1) - 1, 2 * uv[..., 1] / (h - 1) - 1], -1)
    return grid, z


def _sample(img: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return F.grid_sample(img[:, None], grid, mode="bilinear", padding_mode="border",
                         align_corners=True)[:, 0]


def reprojection_loss(out_log: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor,
                      geometry: Geometry) -> torch.Tensor:
    """Mean ``|log z_(a->b) - log D_b|`` over consistent pixels of consecutive frame pairs.

    Args:
        out_log: Log of the refined depth ``[B, F, H, W]`` (metric samples).
        gt: Ground truth ``[B, F, H, W]``.
        valid: Bool ``[B, F, H, W]``: ground truth valid and frame inside the stream.
        geometry: The batch's `Geometry`.

    Returns:
        A scalar (0 when no sample has geometry or no pixel qualifies).
    """
    keep = torch.nonzero(geometry.known).flatten()
    if keep.numel() == 0 or out_log.shape[1] < 2:
        return out_log.new_zeros(())
    f = out_log.shape[1]
    ia, ib = _pairs(f)
    k = geometry.intrinsics[keep].float()
    poses = geometry.poses[keep].float()
    n = keep.numel() * len(ia)
    k_pairs = k[:, None].expand(-1, len(ia), 3, 3).reshape(n, 3, 3)
    a_to_b = (torch.linalg.inv(poses[:, ib]) @ poses[:, ia]).reshape(n, 4, 4)

    def pick(x: torch.Tensor, idx: list[int]) -> torch.Tensor:
        return x[keep][:, idx].flatten(0, 1)

    with torch.no_grad():
        g_a, g_b = pick(gt, ia).float(), pick(gt, ib).float()
        grid_g, z_g = _warp(g_a.clamp_min(1e-6), k_pairs, a_to_b)
        g_warp = _sample(g_b, grid_g)
        ok = (grid_g.abs() <= 1).all(-1) & (z_g > 0) & pick(valid, ia)
        ok &= (z_g - g_warp).abs() / g_warp.clamp_min(1e-6) < GT_TOLERANCE
        ok &= _sample(pick(valid, ib).float(), grid_g) > 0.999
        ok &= ~pick(geometry.dynamic, ia) & (_sample(pick(geometry.dynamic, ib).float(), grid_g) < 1e-3)
    d_a = torch.exp(pick(out_log, ia))
    grid_p, z_p = _warp(d_a, k_pairs, a_to_b)
    ok = ok & (grid_p.detach().abs() <= 1).all(-1) & (z_p.detach() > 0)
    p_b = _sample(pick(out_log, ib), grid_p)
    err = (torch.log(z_p.clamp_min(1e-6)) - p_b).abs()
    mask = ok.float()
    return (err * mask).sum() / mask.sum().clamp_min(1)
