"""Per-frame preprocessing of the official procedures, in torch.

RGB uint8 -> [0,1] float -> bicubic resize (shorter side to ``input_size``, each side snapped to
a multiple of 14 with round-half-to-even, no clamping) -> ImageNet normalisation. Frames whose
longer side exceeds ``max_res`` are first downscaled (antialiased) for the network only; as in
the official tool, which resizes the decoded 8-bit frames, that downscale runs on uint8 (on the
CPU; on other devices in float, one frame at a time).

Memory is bounded by design: frames are converted one at a time, so no more than one
full-resolution float frame exists at once whatever the batch or the resolution.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
PATCH = 14


def _snap(x: float, min_val: int) -> int:
    """Nearest multiple of 14 (ties to even); the next one up if that falls below `min_val`."""
    y = round(x / PATCH) * PATCH
    if y < min_val:
        y = math.ceil(x / PATCH) * PATCH
    return int(y)


def network_size(height: int, width: int, input_size: int) -> tuple[int, int]:
    """The network input size (h, w) for frames of `height` x `width`.

    Very wide or tall frames (long/short > 1.78) get a smaller ``input_size``
    (``round(int(input_size * 1.777 / ratio) / 14) * 14``); then the shorter side is scaled to
    ``input_size`` and both sides are snapped to multiples of 14.

    Raises:
        ValueError: A size that is not positive.
    """
    if height <= 0 or width <= 0 or input_size <= 0:
        raise ValueError(f"frame size {height}x{width} and input_size {input_size} must be positive")
    ratio = max(height, width) / min(height, width)
    if ratio > 1.78:
        input_size = round(int(input_size * 1.777 / ratio) / PATCH) * PATCH
        if input_size <= 0:
            raise ValueError(f"frame {height}x{width} is too elongated (aspect ratio {ratio:.1f})")
    scale = max(input_size / height, input_size / width)
    return _snap(scale * height, input_size), _snap(scale * width, input_size)


def max_res_size(height: int, width: int, max_res: int | None) -> tuple[int, int]:
    """The frame size after limiting the longer side to `max_res` (even sides; unchanged if within)."""
    if not max_res or max(height, width) <= max_res:
        return height, width
    scale = max_res / max(height, width)
    even = lambda v: max(2, int(round(v * scale)) // 2 * 2)  # noqa: E731
    return even(height), even(width)


@dataclass(frozen=True)
class FrameTransform:
    """Preprocessing for frames of one size.

    Attributes:
        frame_size: (H, W) of the incoming frames.
        work_size: (H', W') after the ``max_res`` limit (equal to `frame_size` when within it).
        net_size: (h, w) fed to the network, multiples of 14.
    """

    frame_size: tuple[int, int]
    work_size: tuple[int, int]
    net_size: tuple[int, int]

    @classmethod
    def create(cls, height: int, width: int, *, input_size: int = 518,
               max_res: int | None = None) -> "FrameTransform":
        """The transform for `height` x `width` frames (see `network_size`, `max_res_size`)."""
        work = max_res_size(height, width, max_res)
        return cls((height, width), work, network_size(*work, input_size))

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """Network input of a batch of frames.

        Args:
            frames: RGB uint8 [T,3,H,W] of `frame_size`, on the device to compute on.

        Returns:
            float32 [T,3,h,w] normalised, of `net_size`.
        """
        if frames.dtype != torch.uint8 or frames.ndim != 4 or tuple(frames.shape[-2:]) != self.frame_size:
            raise ValueError(f"expected uint8 [T,3,{self.frame_size[0]},{self.frame_size[1]}], "
                             f"got {frames.dtype} {tuple(frames.shape)}")
        out = torch.empty((frames.shape[0], 3, *self.net_size), dtype=torch.float32,
                          device=frames.device)
        mean = torch.tensor(MEAN, device=frames.device).view(1, 3, 1, 1)
        std = torch.tensor(STD, device=frames.device).view(1, 3, 1, 1)
        for i in range(frames.shape[0]):
            x = self._work_frame(frames[i:i + 1])
            x = F.interpolate(x, size=self.net_size, mode="bicubic", align_corners=False, antialias=False)
            out[i:i + 1] = (x - mean) / std
        return out

    def _work_frame(self, frame: torch.Tensor) -> torch.Tensor:
        """One uint8 frame [1,3,H,W] at `work_size`, as float in [0,1]."""
        if self.work_size == self.frame_size:
            return frame.float() / 255.0
        if frame.device.type == "cpu":  # uint8 antialiased resize: no full-size float copy
            small = F.interpolate(frame, size=self.work_size, mode="bilinear", align_corners=False,
                                  antialias=True)
            return small.float() / 255.0
        return F.interpolate(frame.float() / 255.0, size=self.work_size, mode="bilinear",
                             align_corners=False, antialias=True)


def resize_depth(depth: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Depth [T,h,w] to `size` (H, W): bilinear, align_corners=True, float32, one frame at a time
    (a no-op copy-free return when the size already matches)."""
    if tuple(depth.shape[-2:]) == tuple(size) and depth.dtype == torch.float32:
        return depth
    out = torch.empty((depth.shape[0], *size), dtype=torch.float32, device=depth.device)
    for i in range(depth.shape[0]):
        out[i] = F.interpolate(depth[i:i + 1].float().unsqueeze(1), size=size, mode="bilinear",
                               align_corners=True)[0, 0]
    return out
