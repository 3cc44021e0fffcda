"""Training losses of the refiner (all on log depth; no global rescale anywhere).

* ``gt``: L1 to ground truth where it is valid (the main term when ground truth exists);
* ``teacher``: confidence-weighted L1 to the clean teacher (keeps the output where the
  teacher is trustworthy, with its metric scale);
* ``temporal``: L1 between the output's frame-to-frame change and the ground truth's (zero
  without ground truth), only where the clean teacher's change is small, i.e. away from edges
  and fast movers;
* ``residual``: confidence-weighted L1 of the residual itself;
* ``harm`` (do-no-harm): per frame, how much the output's mean log error to ground truth
  exceeds the input's (the unrefined teacher's), hinged at zero: a frame whose teacher is
  right and that the refiner pulls toward its neighbours pays for it (0 without ground truth);
* ``reprojection`` (added by the training step, `vdp.refiner.reprojection`): consistency of
  consecutive frames reprojected with the clip's camera poses, TAE's differentiable twin.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms and the temporal mask threshold (log depth per frame)."""

    gt: float = 1.0
    teacher: float = 0.05
    temporal: float = 12.0
    residual: float = 0.01
    temporal_mask: float = 0.08
    harm: float = 0.0
    reprojection: float = 0.0


def refiner_loss(out_log: torch.Tensor, rho: torch.Tensor, teacher_log: torch.Tensor,
                 conf: torch.Tensor, gt_log: torch.Tensor | None, gt_valid: torch.Tensor | None,
                 weights: LossWeights) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and its parts.

    Args:
        out_log: Log of the refined depth ``[B, T, H, W]``.
        rho: The residual (``out_log - log(input)``) ``[B, T, H, W]``.
        teacher_log: Log of the clean teacher ``[B, T, H, W]``.
        conf: Confidence at full resolution ``[B, T, H, W]``.
        gt_log: Log ground truth ``[B, T, H, W]`` or None.
        gt_valid: Bool ``[B, T, H, W]`` where ground truth is valid, or None.
        weights: `LossWeights`.

    Returns:
        The scalar loss and a dict of the parts (floats).
    """
    parts: dict[str, torch.Tensor] = {}
    parts["teacher"] = (conf * (out_log - teacher_log).abs()).mean()
    parts["residual"] = (conf * rho.abs()).mean()
    d_out = out_log[:, 1:] - out_log[:, :-1]
    d_teacher = teacher_log[:, 1:] - teacher_log[:, :-1]
    mask = (d_teacher.abs() < weights.temporal_mask).float()
    if gt_log is not None:
        valid = gt_valid.float() if gt_valid is not None else torch.ones_like(gt_log)
        parts["gt"] = (valid * (out_log - gt_log).abs()).sum() / valid.sum().clamp_min(1)
        parts["harm"] = frame_harm(out_log, out_log - rho, gt_log, valid)
        d_gt = gt_log[:, 1:] - gt_log[:, :-1]
        mask = mask * valid[:, 1:] * valid[:, :-1]
        target = d_gt
    else:
        parts["gt"] = out_log.new_zeros(())
        parts["harm"] = out_log.new_zeros(())
        target = torch.zeros_like(d_out)
    parts["temporal"] = (mask * (d_out - target).abs()).sum() / mask.sum().clamp_min(1)
    total = (weights.gt * parts["gt"] + weights.teacher * parts["teacher"]
             + weights.temporal * parts["temporal"] + weights.residual * parts["residual"])
    if weights.harm:
        total = total + weights.harm * parts["harm"]
    return total, {k: float(v.detach()) for k, v in parts.items()}


def frame_harm(out_log: torch.Tensor, in_log: torch.Tensor, gt_log: torch.Tensor,
               valid: torch.Tensor) -> torch.Tensor:
    """Mean over frames of ``max(0, err(out) - err(in))``, err = mean |log error| of the frame.

    Args:
        out_log: Refined log depth ``[B, T, H, W]``.
        in_log: The model's input (unrefined) log depth ``[B, T, H, W]``.
        gt_log: Log ground truth ``[B, T, H, W]``.
        valid: Float ``[B, T, H, W]`` (1 where ground truth is valid).
    """
    n = valid.sum(dim=(2, 3))
    e_out = (valid * (out_log - gt_log).abs()).sum(dim=(2, 3)) / n.clamp_min(1)
    e_in = (valid * (in_log - gt_log).abs()).sum(dim=(2, 3)) / n.clamp_min(1)
    has = (n > 0).float()
    return (has * torch.relu(e_out - e_in)).sum() / has.sum().clamp_min(1)
