"""Procedural RGB + metric depth videos with known camera (training and evaluation data).

A clip is a ray-cast room (floor, ceiling, four walls; up to 20 m deep) holding spheres and
boxes, some of them moving, seen by a camera that walks, turns and shakes. Surfaces carry
procedural textures with simple shading. Everything is exact: z-depth in metres (clipped to
[`NEAR_M`, `FAR_M`]), intrinsics, camera-to-world poses (OpenCV camera axes: x right, y down,
z forward; world: y up), and a mask of pixels that show a moving object.

`render_clip` is deterministic in its seed, so held-out sets are defined by seed ranges.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

NEAR_M = 0.5
FAR_M = 20.0


@dataclass
class SceneClip:
    """One rendered clip.

    Attributes:
        rgb: uint8 ``[T, 3, H, W]``.
        depth: Metric z-depth, float32 ``[T, H, W]``.
        dynamic: Bool ``[T, H, W]``, True where a moving object is seen.
        intrinsics: ``[3, 3]`` float32 pinhole matrix.
        poses: Camera-to-world ``[T, 4, 4]`` float32.
        seed: The seed it was rendered from.
    """

    rgb: torch.Tensor
    depth: torch.Tensor
    dynamic: torch.Tensor
    intrinsics: torch.Tensor
    poses: torch.Tensor
    seed: int

    def __repr__(self) -> str:
        return f"SceneClip(seed={self.seed}, depth={tuple(self.depth.shape)})"


@dataclass
class _Prim:
    kind: str                  # "sphere" or "box"
    center: np.ndarray         # [T, 3] per frame
    size: np.ndarray           # radius [1] or half extents [3]
    color: np.ndarray          # [3] in [0, 1]
    texture: np.ndarray        # [3] spatial frequencies
    moving: bool


def _camera_basis(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera-to-world rotation with columns (right, down, forward)."""
    f = np.array([math.sin(yaw) * math.cos(pitch), math.sin(pitch), math.cos(yaw) * math.cos(pitch)])
    r = np.array([math.cos(yaw), 0.0, -math.sin(yaw)])
    d = np.cross(r, f)
    c, s = math.cos(roll), math.sin(roll)
    r, d = c * r + s * d, -s * r + c * d
    return np.stack([r, d, f], axis=1)


def _sample_scene(rng: np.random.Generator, frames: int):
    room_w, room_h, room_d = rng.uniform(3.0, 10.0), rng.uniform(2.5, 5.0), rng.uniform(6.0, 19.0)
    lo = np.array([-room_w / 2, 0.0, 0.0])
    hi = np.array([room_w / 2, room_h, room_d])
    t = np.arange(frames, dtype=np.float64)
    # Camera: walk forward-ish, turn slowly, shake a little (handheld).
    speed = rng.uniform(0.0, 0.035) * (rng.random() < 0.85)
    heading = rng.uniform(-0.5, 0.5)
    start = np.array([rng.uniform(-0.25, 0.25) * room_w, rng.uniform(1.0, min(2.0, room_h - 0.5)),
                      rng.uniform(0.6, 1.5)])
    vel = speed * np.array([math.sin(heading), 0.0, math.cos(heading)])
    shake = rng.uniform(0.0, 0.01)
    ph = rng.uniform(0, 2 * math.pi, size=6)
    pos = start + t[:, None] * vel + shake * np.sin(0.3 * t[:, None] + ph[None, :3])
    yaw0, yaw_rate = rng.uniform(-0.35, 0.35), rng.uniform(-0.008, 0.008)
    pitch0 = rng.uniform(-0.25, 0.1)
    rot_shake = rng.uniform(0.0, 0.004)
    poses = np.zeros((frames, 4, 4))
    for i in range(frames):
        r = _camera_basis(yaw0 + yaw_rate * i + rot_shake * math.sin(0.37 * i + ph[3]),
                          pitch0 + rot_shake * math.sin(0.29 * i + ph[4]),
                          rot_shake * math.sin(0.23 * i + ph[5]))
        poses[i, :3, :3], poses[i, :3, 3], poses[i, 3, 3] = r, pos[i], 1.0
    prims = []
    for _ in range(int(rng.integers(3, 9))):
        for _attempt in range(20):
            kind = "sphere" if rng.random() < 0.5 else "box"
            size = np.array([rng.uniform(0.2, 0.8)]) if kind == "sphere" else rng.uniform(0.15, 0.8, size=3)
            ext = size.max()
            c0 = np.array([rng.uniform(lo[0] + ext, hi[0] - ext), 0.0,
                           rng.uniform(start[2] + 1.2, hi[2] - ext)])
            c0[1] = ext if rng.random() < 0.6 else rng.uniform(ext, max(ext, room_h - ext))
            moving = rng.random() < 0.5
            centers = np.repeat(c0[None], frames, axis=0)
            if moving:
                direction = rng.normal(size=3) * np.array([1.0, 0.3, 1.0])
                direction /= np.linalg.norm(direction) + 1e-9
                amp, obj_speed = rng.uniform(0.3, 1.5), rng.uniform(0.005, 0.05)
                centers = c0 + amp * np.sin(obj_speed / amp * t + rng.uniform(0, 6.3))[:, None] * direction
            # Keep objects clear of the camera path (no near-plane clipping, no camera inside).
            if np.linalg.norm(centers - pos, axis=1).min() > ext * 1.8 + NEAR_M + 0.3:
                prims.append(_Prim(kind, centers, size, rng.uniform(0.15, 0.95, size=3),
                                   rng.uniform(2.0, 9.0, size=3), moving))
                break
    walls = rng.uniform(0.3, 0.9, size=(3, 3))       # floor/ceiling, side walls, front/back
    wall_tex = rng.uniform(0.7, 3.0, size=(3, 3))
    light = rng.normal(size=3) * np.array([1.0, 0.0, 1.0]) + np.array([0.0, 2.5, 0.0])
    return lo, hi, poses, prims, walls, wall_tex, light / np.linalg.norm(light)


def _pattern(p: torch.Tensor, freq: torch.Tensor) -> torch.Tensor:
    """Procedural texture in [0, 1] of world points ``[..., 3]``."""
    s = torch.sin(p * freq * 2.1).prod(-1) * 0.5 + torch.sin((p * freq).sum(-1) * 1.7) * 0.3
    checker = (torch.floor(p * freq[..., :1]).sum(-1) % 2) * 0.35
    return (0.5 + 0.5 * s).clamp(0, 1) * 0.65 + checker


def render_clip(seed: int, *, frames: int = 48, height: int = 96, width: int = 128,
                focal: float | None = None) -> SceneClip:
    """Render one procedural clip.

    Args:
        seed: Seed of every random choice (scene, motion, textures).
        frames: Number of frames.
        height: Image height.
        width: Image width.
        focal: Focal length in units of the image width (default: random in [0.7, 1.1]).

    Returns:
        `SceneClip`.
    """
    rng = np.random.default_rng(seed)
    f = (focal if focal is not None else rng.uniform(0.7, 1.1)) * width
    k = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]])
    lo, hi, poses, prims, walls, wall_tex, light = _sample_scene(rng, frames)
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float64),
                          torch.arange(width, dtype=torch.float64), indexing="ij")
    cam_dirs = torch.stack([(u - k[0, 2]) / f, (v - k[1, 2]) / f, torch.ones_like(u)], -1)  # z = 1
    lo_t, hi_t = torch.from_numpy(lo), torch.from_numpy(hi)
    light_t = torch.from_numpy(light)
    depth = torch.empty(frames, height, width, dtype=torch.float32)
    rgb = torch.empty(frames, 3, height, width, dtype=torch.uint8)
    dynamic = torch.empty(frames, height, width, dtype=torch.bool)
    for i in range(frames):
        rot = torch.from_numpy(poses[i, :3, :3])
        o = torch.from_numpy(poses[i, :3, 3])
        d = cam_dirs @ rot.T                                           # world, z-depth = t
        safe = torch.where(d.abs() < 1e-9, torch.full_like(d, 1e-9), d)
        t_far = torch.maximum((lo_t - o) / safe, (hi_t - o) / safe)      # room interior exits
        t_best, axis = t_far.min(-1)
        normal = -torch.nn.functional.one_hot(axis, 3).double() * torch.sign(d.gather(-1, axis[..., None]))
        color = torch.from_numpy(walls)[axis]
        freq = torch.from_numpy(wall_tex)[axis]
        hit_dyn = torch.zeros(height, width, dtype=torch.bool)
        for p in prims:
            c = torch.from_numpy(p.center[i])
            if p.kind == "sphere":
                oc = o - c
                a = (d * d).sum(-1)
                b = 2 * (d * oc).sum(-1)
                disc = b * b - 4 * a * ((oc * oc).sum() - p.size[0] ** 2)
                t_hit = (-b - torch.sqrt(disc.clamp_min(0))) / (2 * a)
                ok = (disc > 0) & (t_hit > 0)
                n_hit = o + t_hit[..., None] * d - c
                n_hit = n_hit / n_hit.norm(dim=-1, keepdim=True).clamp_min(1e-9)
            else:
                half = torch.from_numpy(p.size)
                t1, t2 = (c - half - o) / safe, (c + half - o) / safe
                t_near, t_exit = torch.minimum(t1, t2), torch.maximum(t1, t2)
                t_hit, ax = t_near.max(-1)
                ok = (t_hit <= t_exit.min(-1).values) & (t_hit > 0)
                n_hit = -torch.nn.functional.one_hot(ax, 3).double() * torch.sign(d.gather(-1, ax[..., None]))
            closer = ok & (t_hit < t_best)
            t_best = torch.where(closer, t_hit, t_best)
            normal = torch.where(closer[..., None], n_hit, normal)
            color = torch.where(closer[..., None], torch.from_numpy(p.color), color)
            freq = torch.where(closer[..., None], torch.from_numpy(p.texture), freq)
            hit_dyn = torch.where(closer, torch.tensor(p.moving), hit_dyn)
        point = o + t_best[..., None] * d
        shade = 0.35 + 0.65 * (normal * light_t).sum(-1).abs()
        tex = _pattern(point, freq)
        img = color * (shade * (0.45 + 0.55 * tex))[..., None]
        rgb[i] = (img.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(2, 0, 1)
        depth[i] = t_best.clamp(NEAR_M, FAR_M).float()
        dynamic[i] = hit_dyn
    return SceneClip(rgb=rgb, depth=depth, dynamic=dynamic,
                     intrinsics=torch.from_numpy(k).float(), poses=torch.from_numpy(poses).float(),
                     seed=seed)
