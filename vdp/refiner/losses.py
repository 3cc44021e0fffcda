"""Training losses of the refiner (all on log depth; no global rescale anywhere).

* ``gt``: L1 to ground truth where it is valid (the main term when ground truth exists);
* ``teacher``: confidence-weighted L1 to the clean teacher (keeps the output where the
  teacher is trustworthy, with its metric scale);
* ``temporal``: L1 between the output's frame-to-frame change and the ground truth's (zero
  without ground truth), only where the clean teacher's change is small, i.e. away from edges
  and fast movers;
* ``residual``: confidence-weighted L1 of the residual itself.
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
        d_gt = gt_log[:, 1:] - gt_log[:, :-1]
        mask = mask * valid[:, 1:] * valid[:, :-1]
        target = d_gt
    else:
        parts["gt"] = out_log.new_zeros(())
        target = torch.zeros_like(d_out)
    parts["temporal"] = (mask * (d_out - target).abs()).sum() / mask.sum().clamp_min(1)
    total = (weights.gt * parts["gt"] + weights.teacher * parts["teacher"]
             + weights.temporal * parts["temporal"] + weights.residual * parts["residual"])
    return total, {k: float(v.detach()) for k, v in parts.items()}
