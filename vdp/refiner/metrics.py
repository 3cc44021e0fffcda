"""Depth accuracy and temporal stability metrics (pooled sums, so sequences combine exactly).

* AbsRel ``mean |p - g| / g``, RMSE ``sqrt(mean (p - g)^2)`` (metres), delta1 ``share of
  max(p/g, g/p) < 1.25``, over pixels with valid ground truth.
* Flicker: mean ``|log p_t - log p_(t-1)|`` over pixels that are static in ground truth
  (``|log g_t - log g_(t-1)| < STATIC_LOG_CHANGE``, both valid); ground truth's own value on
  the same pixels is the floor.
* TAE (Video Depth Anything's temporal alignment error): each frame's predicted depth is
  unprojected, moved by the known relative camera pose into the next frame (and the next one
  into the previous), and compared as AbsRel with the prediction there, sampled bilinearly.
  Counted only where ground truth agrees with itself after the same warp (no occlusion, no
  moving object) and the point lands inside the image; the mean of both directions.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

#: A pixel is static in ground truth when its log depth changes less than this per frame.
STATIC_LOG_CHANGE = 0.005
#: Ground-truth self-consistency needed for a pixel to count in TAE.
TAE_GT_TOLERANCE = 0.02


@dataclass
class MetricSums:
    """Running sums of one method (add sequences with `add_*`, read with `result`)."""

    n: float = 0.0
    abs_rel: float = 0.0
    sq: float = 0.0
    d1: float = 0.0
    flicker_n: float = 0.0
    flicker: float = 0.0
    tae_n: float = 0.0
    tae: float = 0.0
    strata: dict[str, list[float]] = field(default_factory=dict)

    def add_depth(self, pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> None:
        p, g = pred[valid].double(), gt[valid].double()
        self.n += p.numel()
        self.abs_rel += float(((p - g).abs() / g).sum())
        self.sq += float(((p - g) ** 2).sum())
        self.d1 += float((torch.maximum(p / g, g / p) < 1.25).sum())

    def add_flicker(self, pred: torch.Tensor, static: torch.Tensor) -> None:
        lp = torch.log(pred.clamp_min(1e-6)).double()
        d = (lp[1:] - lp[:-1]).abs()[static]
        self.flicker_n += d.numel()
        self.flicker += float(d.sum())

    def add_tae(self, sums: tuple[float, float]) -> None:
        self.tae += sums[0]
        self.tae_n += sums[1]

    def add_stratum(self, name: str, pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor,
                    static: torch.Tensor) -> None:
        """AbsRel over `valid` and flicker over `static` ([T-1]) for one confidence stratum."""
        s = self.strata.setdefault(name, [0.0, 0.0, 0.0, 0.0])
        p, g = pred[valid].double(), gt[valid].double()
        s[0] += float(((p - g).abs() / g).sum())
        s[1] += p.numel()
        lp = torch.log(pred.clamp_min(1e-6)).double()
        d = (lp[1:] - lp[:-1]).abs()[static]
        s[2] += float(d.sum())
        s[3] += d.numel()

    def result(self) -> dict[str, float | dict[str, dict[str, float]]]:
        out: dict = {
            "abs_rel": self.abs_rel / max(self.n, 1),
            "rmse": (self.sq / max(self.n, 1)) ** 0.5,
            "delta1": self.d1 / max(self.n, 1),
            "flicker": self.flicker / max(self.flicker_n, 1),
        }
        if self.tae_n:
            out["tae"] = self.tae / self.tae_n
        if self.strata:
            out["strata"] = {k: {"abs_rel": v[0] / max(v[1], 1), "flicker": v[2] / max(v[3], 1),
                                 "pixels": v[1]} for k, v in self.strata.items()}
        return out


def static_mask(gt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Bool ``[T-1, H, W]``: pixel static in ground truth between frames t-1 and t."""
    lg = torch.log(gt.clamp_min(1e-6))
    both = valid[1:] & valid[:-1]
    return both & ((lg[1:] - lg[:-1]).abs() < STATIC_LOG_CHANGE)


def warp(depth_a: torch.Tensor, k: torch.Tensor, a_to_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Project frames a's depth ``[N, H, W]`` into frames b (intrinsics ``[N, 3, 3]``, relative
    poses ``[N, 4, 4]``): the normalised sampling grid in b ``[N, H, W, 2]`` and the depth in b
    ``[N, H, W]``, in `depth_a`'s dtype."""
    n, h, w = depth_a.shape
    k, a_to_b = k.to(depth_a.dtype), a_to_b.to(depth_a.dtype)
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


def sample(img: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of ``[N, H, W]`` images at `warp`'s grid (border padding)."""
    return F.grid_sample(img[:, None].to(grid.dtype), grid, mode="bilinear", padding_mode="border",
                         align_corners=True)[:, 0]


def landed(grid: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Bool ``[N, H, W]``: the warped point is in front of camera b and inside its image."""
    return (grid.abs() <= 1).all(-1) & (z > 0)


def reprojectable(gt_a: torch.Tensor, gt_b: torch.Tensor, valid_a: torch.Tensor, valid_b: torch.Tensor,
                  k: torch.Tensor, a_to_b: torch.Tensor, dynamic_a: torch.Tensor | None = None,
                  dynamic_b: torch.Tensor | None = None) -> torch.Tensor:
    """Bool ``[N, H, W]``: pixels of frames a where ground truth reprojects into b within
    `TAE_GT_TOLERANCE` (no occlusion), both are valid and neither sees a moving object."""
    grid, z = warp(gt_a, k, a_to_b)
    g_b = sample(gt_b, grid)
    ok = landed(grid, z) & valid_a & ((z - g_b).abs() / g_b.clamp_min(1e-6) < TAE_GT_TOLERANCE)
    ok &= sample(valid_b, grid) > 0.999
    if dynamic_a is not None:
        ok &= ~dynamic_a & (sample(dynamic_b, grid) < 1e-3)
    return ok


def tae_sums(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, dynamic: torch.Tensor | None,
             k: torch.Tensor, poses: torch.Tensor) -> tuple[float, float]:
    """TAE numerator and count over a sequence (both directions of each consecutive pair).

    Args:
        pred: Predicted metric depth ``[T, H, W]``.
        gt: Ground truth ``[T, H, W]``.
        valid: Bool ``[T, H, W]`` ground truth valid.
        dynamic: Bool ``[T, H, W]`` moving-object pixels, or None.
        k: Intrinsics ``[3, 3]``.
        poses: Camera-to-world ``[T, 4, 4]``.
    """
    total, count = 0.0, 0.0
    kk = k.double()[None]
    for i in range(pred.shape[0] - 1):
        for a, b in ((i, i + 1), (i + 1, i)):
            a_to_b = (torch.linalg.inv(poses[b].double()) @ poses[a].double())[None]
            dyn = (None, None) if dynamic is None else (dynamic[a:a + 1], dynamic[b:b + 1])
            ok = reprojectable(gt[a:a + 1].double(), gt[b:b + 1], valid[a:a + 1], valid[b:b + 1],
                               kk, a_to_b, *dyn)
            grid_p, z_p = warp(pred[a:a + 1].double(), kk, a_to_b)
            p_b = sample(pred[b:b + 1], grid_p)
            ok &= landed(grid_p, z_p)
            err = (z_p - p_b).abs() / p_b.clamp_min(1e-6)
            total += float(err[ok].sum())
            count += float(ok.sum())
    return total / 2, count / 2
