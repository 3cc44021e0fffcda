"""Fast guided filter refiner: the classic guided filter (radius 1, eps 1e-5), no parameters.

Box means are two separable 1x3 / 3x1 convolutions with weight 1/3 and zero padding, so
borders are attenuated rather than renormalised (as in the official model).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BoxFilter(nn.Module):
    """Separable mean over a ``(2r+1) x (2r+1)`` window with zero padding, per channel."""

    def __init__(self, r: int) -> None:
        super().__init__()
        self.r = r

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = 2 * self.r + 1
        c = x.shape[1]
        kx = torch.full((c, 1, 1, k), 1 / k, device=x.device, dtype=x.dtype)
        ky = torch.full((c, 1, k, 1), 1 / k, device=x.device, dtype=x.dtype)
        x = F.conv2d(x, kx, padding=(0, self.r), groups=c)
        return F.conv2d(x, ky, padding=(self.r, 0), groups=c)


class FastGuidedFilter(nn.Module):
    """Guided filter fitted at low resolution and applied to a high-resolution guide.

    Args:
        r: Box radius.
        eps: Regulariser added to the local variance.
    """

    def __init__(self, r: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.r = r
        self.eps = eps
        self.boxfilter = BoxFilter(r)

    def forward(self, lr_x: torch.Tensor, lr_y: torch.Tensor, hr_x: torch.Tensor) -> torch.Tensor:
        """lr_x, lr_y: ``[N,C,h,w]``; hr_x: ``[N,C,H,W]``; returns ``[N,C,H,W]``."""
        mean_x = self.boxfilter(lr_x)
        mean_y = self.boxfilter(lr_y)
        cov_xy = self.boxfilter(lr_x * lr_y) - mean_x * mean_y
        var_x = self.boxfilter(lr_x * lr_x) - mean_x * mean_x
        a = cov_xy / (var_x + self.eps)
        b = mean_y - a * mean_x
        size = hr_x.shape[-2:]
        a = F.interpolate(a, size, mode="bilinear", align_corners=False)
        b = F.interpolate(b, size, mode="bilinear", align_corners=False)
        return torch.addcmul(b, a, hr_x)  # a * hr_x + b without a full-size temporary


class FastGuidedFilterRefiner(nn.Module):
    """Refiner with the same call signature as `DeepGuidedFilterRefiner` (hidden map unused)."""

    def __init__(self) -> None:
        super().__init__()
        # The official attribute name (with its typo); it holds no parameters.
        self.guilded_filter = FastGuidedFilter(1, 1e-5)

    def _forward_frames(self, fine_src: torch.Tensor, base_src: torch.Tensor, base_fgr: torch.Tensor,
                        base_pha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.guilded_filter(
            torch.cat([base_src, base_src.mean(1, keepdim=True)], dim=1),
            torch.cat([base_fgr, base_pha], dim=1),
            torch.cat([fine_src, fine_src.mean(1, keepdim=True)], dim=1))
        fgr, pha = out.split([3, 1], dim=1)
        return fgr, pha

    def forward(self, fine_src: torch.Tensor, base_src: torch.Tensor, base_fgr: torch.Tensor,
                base_pha: torch.Tensor, base_hid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Same arguments and returns as `DeepGuidedFilterRefiner.forward`; `base_hid` is ignored."""
        if fine_src.ndim == 5:
            lead = fine_src.shape[:2]
            fgr, pha = self._forward_frames(*(t.flatten(0, 1) for t in
                                              (fine_src, base_src, base_fgr, base_pha)))
            return fgr.unflatten(0, lead), pha.unflatten(0, lead)
        return self._forward_frames(fine_src, base_src, base_fgr, base_pha)
