"""Reprojection consistency of depth across frames with known camera motion (a training loss).

TAE, the evaluation's consistency measure, reprojects frame a's depth into frame b with the
ground-truth poses and compares it with frame b's depth. A per-pixel temporal filter can lower
the teacher's frame-to-frame flicker at each pixel and still raise TAE: when the camera moves,
a pixel sees a different surface point every frame, and averaging over time smears what was
there before into what is there now. This loss is TAE's differentiable twin for training, in
log depth: for each pair of consecutive frames (both directions) it warps the output of frame a
into frame b and penalises ``|log z_a->b - log D_b(warped pixel)|`` on the pixels TAE counts
(`vdp.refiner.metrics.reprojectable`, with the same warp).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from vdp.refiner.metrics import landed, reprojectable, sample, warp


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
        ok = reprojectable(pick(gt, ia).float(), pick(gt, ib).float(), pick(valid, ia), pick(valid, ib),
                           k_pairs, a_to_b, pick(geometry.dynamic, ia), pick(geometry.dynamic, ib))
    grid_p, z_p = warp(torch.exp(pick(out_log, ia)), k_pairs, a_to_b)
    ok = ok & landed(grid_p.detach(), z_p.detach())
    p_b = sample(pick(out_log, ib), grid_p)
    err = (torch.log(z_p.clamp_min(1e-6)) - p_b).abs()
    mask = ok.float()
    return (err * mask).sum() / mask.sum().clamp_min(1)
