"""Image to patch tokens."""
from __future__ import annotations

import torch
from torch import nn


class PatchEmbed(nn.Module):
    """A strided convolution that turns an image into one token per patch.

    Args:
        patch_size: Patch side in pixels.
        in_chans: Image channels.
        embed_dim: Token width.
    """

    def __init__(self, patch_size: int = 14, in_chans: int = 3, embed_dim: int = 384) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x [B,3,H,W] with H, W multiples of the patch size. Returns: [B, H*W/p², C]."""
        h, w = x.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"image size {h}x{w} is not a multiple of the patch size {self.patch_size}")
        return self.proj(x).flatten(2).transpose(1, 2)
