"""Procedural stereo scenes with exact ground truth, for judging view synthesis.

`render_scene` ray-casts a textured room (back wall, floor, spheres, a frontal card near the
camera) from two pinhole cameras a baseline apart. The rig is parallel with sensor shift
(off-axis), converged on the plane ``z = z_conv_m``: a point at depth ``z`` appears at
``x_R = x_L - f * b * (1/z - 1/z_conv)``. Textures are functions of the 3D surface point, so
both cameras see the same surface colour (Lambertian, no lighting). Colours are 3x3
supersampled; depth is the centre sample.

`region_disparity` measures the disparity of one surface between two views from their pixels
alone, to check the disparity of synthesised output.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vdp.stereo.dibr import dilate_nearness, naive_forward_warp, warp_view

SUPERSAMPLE = 3


@dataclass
class StereoScene:
    """A rendered stereo pair with ground truth.

    Attributes:
        left: ``[3,H,W]`` float in [0,1].
        right: ``[3,H,W]`` float in [0,1].
        depth_left: ``[H,W]`` depth (metres, z) seen by the left camera.
        depth_right: ``[H,W]`` depth seen by the right camera.
        visible_right: ``[H,W]`` bool, right-view pixels also visible in the left view.
        visible_left: ``[H,W]`` bool, left-view pixels also visible in the right view.
        focal_px: Focal length in pixels.
        baseline_m: Camera distance.
        z_conv_m: Depth of the zero-disparity plane.
        z_near_m: Depth of the frontal card (nearest surface).
        z_far_m: Depth of the back wall (farthest surface).
    """

    left: torch.Tensor
    right: torch.Tensor
    depth_left: torch.Tensor
    depth_right: torch.Tensor
    visible_right: torch.Tensor
    visible_left: torch.Tensor
    focal_px: float
    baseline_m: float
    z_conv_m: float
    z_near_m: float
    z_far_m: float

    def disparity_px(self, depth: torch.Tensor) -> torch.Tensor:
        """``x_L - x_R`` in pixels for points at `depth`."""
        return self.focal_px * self.baseline_m * (1 / depth - 1 / self.z_conv_m)


def _texture(p: torch.Tensor, seed: int, base: tuple[float, float, float]) -> torch.Tensor:
    """Colour ``[3,N]`` of surface points ``p`` ``[N,3]``: base colour plus sinusoid patterns."""
    g = torch.Generator().manual_seed(seed)
    p = p.float()
    out = []
    for c in range(3):
        k = (torch.rand(4, 3, generator=g) - 0.5) * 2
        k = k / k.norm(dim=1, keepdim=True) * (2 * math.pi / (0.12 + 0.5 * torch.rand(4, 1, generator=g)))
        phase = torch.rand(4, generator=g) * 2 * math.pi
        amp = 0.08 + 0.1 * torch.rand(4, generator=g)
        pattern = (torch.sin(p @ k.T + phase) * amp).sum(1)
        out.append(base[c] + pattern)
    checker = ((torch.floor(p[:, 0] / 0.4) + torch.floor(p[:, 1] / 0.4) + torch.floor(p[:, 2] / 0.4)) % 2)
    return (torch.stack(out) + 0.12 * (checker - 0.5)).clamp(0, 1)


def _cast(width: int, height: int, focal: float, cam_x: float, sensor_shift: float,
          seed: int, z_near: float, z_far: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Ray-cast the scene; returns colour ``[3,H,W]`` and depth ``[H,W]``."""
    s = SUPERSAMPLE
    hs, ws = height * s, width * s
    v, u = torch.meshgrid(torch.arange(hs, dtype=torch.float32), torch.arange(ws, dtype=torch.float32),
                          indexing="ij")
    u = (u + 0.5) / s - 0.5
    v = (v + 0.5) / s - 0.5
    dx = (u - (width - 1) / 2 - sensor_shift) / focal
    dy = (v - (height - 1) / 2) / focal
    n = hs * ws
    dx, dy = dx.reshape(-1), dy.reshape(-1)
    origin = torch.tensor([cam_x, 0.0, 0.0], dtype=torch.float32)
    d = torch.stack([dx, dy, torch.ones_like(dx)], 1)  # z component 1: t == depth
    best_t = torch.full((n,), math.inf, dtype=torch.float32)
    obj = torch.full((n,), -1, dtype=torch.long)

    def take(t: torch.Tensor, ok: torch.Tensor, i: int) -> None:
        better = ok & (t > 0) & (t < best_t)
        best_t[better] = t[better]
        obj[better] = i

    g = torch.Generator().manual_seed(seed)
    # 0: back wall z = z_far
    take(torch.full((n,), z_far, dtype=torch.float32), torch.ones(n, dtype=torch.bool), 0)
    # 1: floor y = floor_y (image y points down)
    floor_y = 1.3
    with torch.no_grad():
        t_floor = floor_y / dy.clamp(min=1e-9)
    take(t_floor, dy > 1e-9, 1)
    # 2: frontal card z = z_near
    cx0 = -1.2 + 0.6 * float(torch.rand(1, generator=g))
    card = (cx0, cx0 + 0.55, -0.55, 0.15)
    px = cam_x + dx * z_near
    py = dy * z_near
    take(torch.full((n,), z_near, dtype=torch.float32),
         (px > card[0]) & (px < card[1]) & (py > card[2]) & (py < card[3]), 2)
    # 3..: spheres
    centres = []
    a = dx * dx + dy * dy + 1
    for i in range(4):
        r = 0.45 + 0.35 * float(torch.rand(1, generator=g))
        cz = z_near + 1.5 + (z_far - z_near - 3.0) * float(torch.rand(1, generator=g))
        cxs = (-0.35 + 0.7 * float(torch.rand(1, generator=g))) * cz * width / focal * 0.8
        cys = (-0.3 + 0.5 * float(torch.rand(1, generator=g))) * cz * height / focal
        c = torch.tensor([cxs, cys, cz], dtype=torch.float32)
        centres.append((c, r))
        oc = (origin - c).tolist()
        bq = 2 * (dx * oc[0] + dy * oc[1] + oc[2])
        cq = oc[0] ** 2 + oc[1] ** 2 + oc[2] ** 2 - r * r
        disc = bq * bq - 4 * a * cq
        t = (-bq - disc.clamp(min=0).sqrt()) / (2 * a)
        take(t, disc > 0, 3 + i)

    p = origin + d * best_t[:, None]
    colour = torch.zeros(3, n, dtype=torch.float32)
    bases = [(0.55, 0.5, 0.45), (0.35, 0.45, 0.3), (0.8, 0.3, 0.25),
             (0.3, 0.4, 0.75), (0.7, 0.65, 0.2), (0.25, 0.65, 0.6), (0.6, 0.35, 0.6)]
    for i in range(3 + len(centres)):
        m = obj == i
        if m.any():
            colour[:, m] = _texture(p[m], seed * 31 + i, bases[i % len(bases)]).float()
    colour = colour.view(3, hs, ws)
    colour = F.avg_pool2d(colour[None], s)[0]
    depth = best_t.view(hs, ws)[s // 2::s, s // 2::s]
    return colour.float(), depth.float()


def _visible(depth_src: torch.Tensor, depth_dst: torch.Tensor, disp_dst_to_src: torch.Tensor,
             rel_tol: float = 0.02) -> torch.Tensor:
    """Pixels of the destination view whose surface point is also seen by the source view."""
    h, w = depth_dst.shape
    xs = torch.arange(w, dtype=torch.float32) + disp_dst_to_src
    xi = xs.round().long()
    inside = (xi >= 0) & (xi < w)
    z_src = depth_src.gather(1, xi.clamp(0, w - 1))
    same = (1 / z_src - 1 / depth_dst).abs() <= rel_tol / depth_dst
    vis = inside & same
    # drop pixels next to a depth edge (their colour mixes two surfaces)
    inv = 1 / depth_dst
    pad = F.pad(inv[None, None], (1, 1, 1, 1), mode="replicate")[0, 0]
    jump = torch.stack([(pad[1:-1, :-2] - inv).abs(), (pad[1:-1, 2:] - inv).abs(),
                        (pad[:-2, 1:-1] - inv).abs(), (pad[2:, 1:-1] - inv).abs()]).amax(0)
    return vis & (jump < 0.05 * inv)


def render_scene(width: int = 320, height: int = 240, *, seed: int = 0, baseline_m: float = 0.1,
                 z_near_m: float = 2.5, z_far_m: float = 10.0, z_conv_m: float | None = None
                 ) -> StereoScene:
    """Render a stereo pair of a random (seeded) scene with its true depth and visibility.

    Args:
        width: Image width in pixels (focal length = width, about 53 degrees field of view).
        height: Image height in pixels.
        seed: Scene layout and textures.
        baseline_m: Distance between the cameras.
        z_near_m: Depth of the frontal card, the nearest surface.
        z_far_m: Depth of the back wall.
        z_conv_m: Zero-disparity plane (default: where 1/z is halfway between near and far).

    Returns:
        The scene.
    """
    focal = float(width)
    if z_conv_m is None:
        z_conv_m = 2 / (1 / z_near_m + 1 / z_far_m)
    shift = focal * baseline_m / (2 * z_conv_m)
    left, depth_l = _cast(width, height, focal, -baseline_m / 2, -shift, seed, z_near_m, z_far_m)
    right, depth_r = _cast(width, height, focal, baseline_m / 2, shift, seed, z_near_m, z_far_m)
    fb = focal * baseline_m
    disp_r = fb * (1 / depth_r - 1 / z_conv_m)
    disp_l = fb * (1 / depth_l - 1 / z_conv_m)
    vis_r = _visible(depth_l, depth_r, disp_r)       # right pixel x sits at x + d in the left view
    vis_l = _visible(depth_r, depth_l, -disp_l)      # left pixel x sits at x - d in the right view
    return StereoScene(left, right, depth_l, depth_r, vis_r, vis_l, focal, baseline_m, z_conv_m,
                       z_near_m, z_far_m)


def region_disparity(left: torch.Tensor, right: torch.Tensor, mask: torch.Tensor, max_disp: float,
                     upsample: int = 8) -> float:
    """Disparity ``x_L - x_R`` of one region, measured from the pixels alone.

    Both views are upsampled `upsample` times horizontally (bicubic); the shift that minimises
    the mean absolute difference between ``left(x)`` and ``right(x - d)`` over `mask` is found
    on that 1/`upsample` pixel grid and refined by a parabola through its neighbours.

    Args:
        left: ``[3,H,W]`` float.
        right: ``[3,H,W]`` float.
        mask: ``[H,W]`` bool, pixels of one surface in the left view (keep it away from its
            edges by more than `max_disp`).
        max_disp: Search ``-max_disp..max_disp`` pixels.
        upsample: Horizontal upsampling factor.

    Returns:
        The disparity in pixels.
    """
    h, w = mask.shape
    up = (h, w * upsample)
    gl = F.interpolate(left.float().mean(0)[None, None], size=up, mode="bicubic", align_corners=False)[0, 0]
    gr = F.interpolate(right.float().mean(0)[None, None], size=up, mode="bicubic", align_corners=False)[0, 0]
    m = mask.repeat_interleave(upsample, dim=1)
    k = int(math.ceil(max_disp * upsample))
    costs = torch.stack([(gl - torch.roll(gr, s, dims=1)).abs()[m].mean() for s in range(-k, k + 1)])
    i = int(costs.argmin().clamp(1, len(costs) - 2))
    c0, c1, c2 = costs[i - 1], costs[i], costs[i + 1]
    denom = float(c0 - 2 * c1 + c2)
    sub = 0.5 * float(c0 - c2) / denom if denom > 1e-12 else 0.0
    return (i - k + max(-0.5, min(0.5, sub))) / upsample


def psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """PSNR in dB over `mask` ``[H,W]`` of images ``[3,H,W]`` in [0,1]."""
    mse = ((a - b) ** 2).mean(0)[mask].mean()
    return float(10 * torch.log10(1 / mse.clamp(min=1e-12)))


def ssim(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean SSIM (Gaussian window 11, sigma 1.5, on luma) over `mask` ``[H,W]``."""
    wts = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    x = (a * wts).sum(0)[None, None]
    y = (b * wts).sum(0)[None, None]
    g = torch.exp(-((torch.arange(11) - 5.0) ** 2) / (2 * 1.5 ** 2))
    g = g / g.sum()
    k = (g[:, None] * g[None, :])[None, None]

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(t, (5, 5, 5, 5), mode="replicate"), k)

    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cxy = blur(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s[0, 0][mask].mean())


def synthesise(scene: StereoScene, direction: str, edge_dilation_px: int = 0) -> dict[str, float]:
    """Ours vs naive, synthesising the right view from the left ("L->R") or the reverse.

    The nearness of the source view comes from its depth with the rig's exact mapping to
    parallax; `edge_dilation_px` dilates it for our warp (never for the naive one)."""
    src, depth, truth, visible, sign = (
        (scene.left, scene.depth_left, scene.right, scene.visible_right, -1.0) if direction == "L->R"
        else (scene.right, scene.depth_right, scene.left, scene.visible_left, 1.0))
    # the exact mapping nearness -> parallax of this rig (x_R = x_L - f b (1/z - 1/z_conv))
    inv_all = torch.cat([1 / scene.depth_left.flatten(), 1 / scene.depth_right.flatten()])
    lo, hi = float(inv_all.min()), float(inv_all.max())
    fb = scene.focal_px * scene.baseline_m
    nearness = ((1 / depth - lo) / (hi - lo))[None]
    scale, offset = sign * fb * (hi - lo), sign * fb * (lo - 1 / scene.z_conv_m)
    ours, holes = warp_view(src[None], dilate_nearness(nearness, edge_dilation_px), scale, offset)
    naive, _ = naive_forward_warp(src[None], scale * nearness + offset)
    return {"psnr": psnr(ours[0], truth, visible), "ssim": ssim(ours[0], truth, visible),
            "naive_psnr": psnr(naive[0], truth, visible), "naive_ssim": ssim(naive[0], truth, visible),
            "holes": float(holes.float().mean()), "occluded": float((~visible).float().mean())}


def interior(mask: torch.Tensor, margin: int) -> torch.Tensor:
    """`mask` shrunk by `margin` pixels."""
    k = 2 * margin + 1
    return F.max_pool2d((~mask).float()[None, None], k, 1, margin)[0, 0] == 0
