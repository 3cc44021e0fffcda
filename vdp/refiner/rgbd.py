"""Real RGB-D sequences from a documented folder layout (TUM / 7-Scenes style).

One sequence is one folder::

    my_sequence/
      rgb/000000.png ...      8-bit RGB frames (optional for the refiner; paired by file stem)
      depth/000000.png ...    16-bit PNG ground truth; metres = value / depth_scale; 0 = no data
      teacher/000000.png ...  optional: the depth model's output per frame, either 16-bit PNG
                              (same depth_scale) or 000000.npy float32 metres; without it the
                              teacher simulator makes one from depth/
      intrinsics.txt          "fx fy cx cy" on one line, or a 3x3 matrix on three lines
      poses.txt               optional: one line per frame, 16 numbers, row-major 4x4
                              camera-to-world (OpenCV camera axes: x right, y down, z forward)
      meta.json               optional: {"depth_scale": 5000.0, "fps": 30.0}
                              (default depth_scale 1000 = millimetres; TUM uses 5000,
                              7-Scenes 1000)

Frames are the sorted stems of ``depth/``. For TUM, associate rgb/depth by timestamp first and
write the pairs under common stems; for 7-Scenes, rename ``frame-000123.depth.png`` to
``depth/000123.png`` (same for colour) and turn each ``frame-000123.pose.txt`` into a line of
``poses.txt``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vdp.errors import DecodeError

DEFAULT_DEPTH_SCALE = 1000.0


@dataclass
class RGBDSequence:
    """A loaded sequence.

    Attributes:
        name: Folder name.
        depth: Ground truth in metres, float32 ``[T, H, W]`` (0 = no data).
        intrinsics: ``[3, 3]`` float32 (for the returned size).
        rgb: uint8 ``[T, 3, H, W]`` or None when ``rgb/`` is absent.
        teacher: The depth model's output in metres ``[T, H, W]``, or None.
        poses: Camera-to-world ``[T, 4, 4]`` float32, or None.
        fps: Frame rate from meta.json (default 30).
    """

    name: str
    depth: torch.Tensor
    intrinsics: torch.Tensor
    rgb: torch.Tensor | None = None
    teacher: torch.Tensor | None = None
    poses: torch.Tensor | None = None
    fps: float = 30.0

    def __repr__(self) -> str:
        return (f"RGBDSequence({self.name!r}, depth={tuple(self.depth.shape)}, "
                f"teacher={self.teacher is not None}, poses={self.poses is not None})")


def _read_png(path: Path) -> np.ndarray:
    import imageio.v2 as imageio

    try:
        return np.asarray(imageio.imread(path))
    except Exception as exc:  # imageio raises many types for a broken file
        raise DecodeError(f"cannot read image {path}: {exc}") from None


def _read_intrinsics(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DecodeError(f"{path.parent}: intrinsics.txt is missing (fx fy cx cy, or a 3x3 matrix)")
    try:
        vals = np.array(path.read_text().split(), dtype=np.float64)
    except ValueError:
        raise DecodeError(f"{path}: intrinsics must be numbers") from None
    if vals.size == 4:
        fx, fy, cx, cy = vals
        return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    if vals.size == 9:
        return vals.reshape(3, 3)
    raise DecodeError(f"{path}: expected 4 numbers (fx fy cx cy) or 9 (3x3 matrix), got {vals.size}")


def _read_poses(path: Path, count: int) -> np.ndarray:
    try:
        rows = [np.array(line.split(), dtype=np.float64) for line in path.read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    except ValueError:
        raise DecodeError(f"{path}: poses must be numbers") from None
    if any(r.size != 16 for r in rows):
        raise DecodeError(f"{path}: every line must hold 16 numbers (a row-major 4x4 matrix)")
    if len(rows) != count:
        raise DecodeError(f"{path}: {len(rows)} poses for {count} depth frames")
    return np.stack(rows).reshape(count, 4, 4)


def is_sequence(path: str | Path) -> bool:
    """Whether `path` is a sequence folder (has ``depth/``)."""
    return (Path(path) / "depth").is_dir()


def find_sequences(root: str | Path) -> list[Path]:
    """Sequence folders: `root` itself if it is one, else its sub-folders that are (sorted)."""
    root = Path(root)
    if not root.is_dir():
        raise DecodeError(f"RGB-D data folder {root} does not exist")
    if is_sequence(root):
        return [root]
    found = sorted(p for p in root.iterdir() if p.is_dir() and is_sequence(p))
    if not found:
        raise DecodeError(f"{root} holds no sequence folder (a folder with depth/, "
                          f"see vdp.refiner.rgbd for the layout)")
    return found


def _resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    if tuple(x.shape[-2:]) == size:
        return x
    if mode == "nearest":
        return F.interpolate(x[:, None], size=size, mode="nearest")[:, 0]
    return F.interpolate(x[:, None], size=size, mode=mode, align_corners=False)[:, 0]


def load_rgbd_sequence(path: str | Path, *, max_frames: int | None = None, stride: int = 1,
                       size: tuple[int, int] | None = None, load_rgb: bool = True) -> RGBDSequence:
    """Load one sequence folder (layout in the module docstring).

    Args:
        path: The sequence folder.
        max_frames: Keep at most this many frames (after `stride`).
        stride: Keep every `stride`-th frame.
        size: Resize to ``(height, width)``: depth by nearest neighbour (holes stay holes),
            teacher bilinearly, intrinsics scaled to match.
        load_rgb: Read ``rgb/`` when present.

    Returns:
        `RGBDSequence`.

    Raises:
        DecodeError: The layout is wrong or a file cannot be read; the message names it.
    """
    path = Path(path)
    if not is_sequence(path):
        raise DecodeError(f"{path} is not an RGB-D sequence folder: depth/ is missing")
    meta = json.loads((path / "meta.json").read_text()) if (path / "meta.json").is_file() else {}
    scale = float(meta.get("depth_scale", DEFAULT_DEPTH_SCALE))
    if scale <= 0:
        raise DecodeError(f"{path}/meta.json: depth_scale must be positive, got {scale}")
    all_stems = sorted(p.stem for p in (path / "depth").glob("*.png"))
    if not all_stems:
        raise DecodeError(f"{path}/depth holds no PNG files")
    poses_all = _read_poses(path / "poses.txt", len(all_stems)) if (path / "poses.txt").is_file() else None
    keep = list(range(0, len(all_stems), max(1, stride)))[:max_frames]
    stems = [all_stems[i] for i in keep]

    depth = []
    for s in stems:
        raw = _read_png(path / "depth" / f"{s}.png")
        if raw.dtype != np.uint16 or raw.ndim != 2:
            raise DecodeError(f"{path}/depth/{s}.png must be a single-channel 16-bit PNG, "
                              f"got {raw.dtype} {raw.shape}")
        depth.append(raw.astype(np.float32) / scale)
    depth_t = torch.from_numpy(np.stack(depth))
    h0, w0 = depth_t.shape[1:]

    teacher_t = None
    tdir = path / "teacher"
    if tdir.is_dir():
        frames = []
        for s in stems:
            if (tdir / f"{s}.npy").is_file():
                frames.append(np.load(tdir / f"{s}.npy").astype(np.float32))
            elif (tdir / f"{s}.png").is_file():
                frames.append(_read_png(tdir / f"{s}.png").astype(np.float32) / scale)
            else:
                raise DecodeError(f"{tdir} has no {s}.npy or {s}.png for depth frame {s}")
            if frames[-1].shape != (h0, w0):
                raise DecodeError(f"{tdir}/{s}: teacher is {frames[-1].shape}, depth is {(h0, w0)}")
        teacher_t = torch.from_numpy(np.stack(frames))

    rgb_t = None
    if load_rgb and (path / "rgb").is_dir():
        imgs = []
        for s in stems:
            img = _read_png(path / "rgb" / f"{s}.png")
            if img.ndim != 3 or img.shape[2] < 3 or img.shape[:2] != (h0, w0):
                raise DecodeError(f"{path}/rgb/{s}.png must be RGB {h0}x{w0}, got {img.shape}")
            imgs.append(img[..., :3].astype(np.uint8))
        rgb_t = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()

    k = torch.from_numpy(_read_intrinsics(path / "intrinsics.txt")).float()
    if size is not None and tuple(size) != (h0, w0):
        sy, sx = size[0] / h0, size[1] / w0
        depth_t = _resize(depth_t, size, "nearest")
        teacher_t = None if teacher_t is None else _resize(teacher_t, size, "bilinear")
        if rgb_t is not None:
            rgb_t = F.interpolate(rgb_t.float(), size=size, mode="bilinear", align_corners=False)
            rgb_t = rgb_t.round().clamp(0, 255).to(torch.uint8)
        k = k.clone()
        k[0, 0], k[0, 2] = k[0, 0] * sx, (k[0, 2] + 0.5) * sx - 0.5
        k[1, 1], k[1, 2] = k[1, 1] * sy, (k[1, 2] + 0.5) * sy - 0.5
    poses_t = None if poses_all is None else torch.from_numpy(poses_all[keep]).float()
    return RGBDSequence(name=path.name, depth=depth_t, intrinsics=k, rgb=rgb_t, teacher=teacher_t,
                        poses=poses_t, fps=float(meta.get("fps", 30.0)))


def fill_holes(depth: torch.Tensor, iterations: int = 64) -> torch.Tensor:
    """Fill zero (invalid) pixels of ``[T, H, W]`` by repeated averaging of valid neighbours."""
    d = depth.clone()[:, None]
    valid = (d > 0).float()
    for _ in range(iterations):
        if bool(valid.all()):
            break
        s = F.avg_pool2d(d * valid, 3, stride=1, padding=1, count_include_pad=False)
        c = F.avg_pool2d(valid, 3, stride=1, padding=1, count_include_pad=False)
        grow = (valid == 0) & (c > 0)
        d = torch.where(grow, s / c.clamp_min(1e-9), d)
        valid = torch.maximum(valid, grow.float())
    fallback = d[valid > 0].median() if bool((valid > 0).any()) else torch.tensor(1.0)
    return torch.where(valid > 0, d, fallback)[:, 0]
