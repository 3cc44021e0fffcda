"""DINOv2 ViT/14 backbone (no register tokens, flat block numbering ``blocks.N``)."""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vdp.models.video_depth_anything.dinov2_layers import Block, PatchEmbed


class DinoVisionTransformer(nn.Module):
    """The DINOv2 vision transformer used as VDA's encoder.

    Args:
        img_size: Image side the positional embedding was learnt for (518 -> 37x37 grid).
        patch_size: Patch side in pixels.
        embed_dim: Token width.
        depth: Number of blocks.
        num_heads: Attention heads per block.
        mlp_ratio: MLP hidden width relative to ``embed_dim``.
        init_values: LayerScale initial value.
        interpolate_offset: Added to the patch counts when resizing the positional grid.
    """

    def __init__(self, *, img_size: int = 518, patch_size: int = 14, embed_dim: int = 384,
                 depth: int = 12, num_heads: int = 6, mlp_ratio: float = 4.0,
                 init_values: float = 1.0, interpolate_offset: float = 0.1) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.interpolate_offset = interpolate_offset
        num_patches = (img_size // patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        self.mask_token = nn.Parameter(torch.zeros(1, embed_dim))  # training only; in checkpoints
        self.patch_embed = PatchEmbed(patch_size, 3, embed_dim)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, init_values) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)

    def interpolate_pos_encoding(self, n_tokens: int, height: int, width: int) -> torch.Tensor:
        """The positional embedding for an image of `height` x `width` pixels.

        The learnt grid is resized bicubically (float32, no antialias) with scale factors
        ``(patches + offset) / grid``; an image with exactly the learnt grid (square) uses it as is.

        Args:
            n_tokens: Tokens per image including the cls token.
            height: Image height in pixels.
            width: Image width in pixels.

        Returns:
            [1, n_tokens, C] in the positional embedding's dtype.
        """
        n_grid = self.pos_embed.shape[1] - 1
        if n_tokens - 1 == n_grid and height == width:
            return self.pos_embed
        pos = self.pos_embed.float()
        side = int(math.sqrt(n_grid))
        h0, w0 = height // self.patch_size, width // self.patch_size
        scale = ((h0 + self.interpolate_offset) / side, (w0 + self.interpolate_offset) / side)
        grid = pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
        with torch.autocast(device_type=grid.device.type, enabled=False):
            grid = F.interpolate(grid, scale_factor=scale, mode="bicubic", align_corners=False,
                                 antialias=False)
        if tuple(grid.shape[-2:]) != (h0, w0):
            raise ValueError(f"positional grid resized to {tuple(grid.shape[-2:])}, expected {(h0, w0)}")
        grid = grid.permute(0, 2, 3, 1).reshape(1, h0 * w0, -1)
        return torch.cat([pos[:, :1], grid], dim=1).to(self.pos_embed.dtype)

    def prepare_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens with the cls token prepended and positions added.

        Args:
            x: Images [B,3,H,W], H and W multiples of the patch size.

        Returns:
            [B, 1 + H*W/p², C].
        """
        h, w = x.shape[-2:]
        tokens = self.patch_embed(x)
        tokens = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        return tokens + self.interpolate_pos_encoding(tokens.shape[1], h, w)

    def get_intermediate_layers(self, x: torch.Tensor, n: Sequence[int]
                                ) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
        """Normalised outputs of the blocks `n`, split into patch and cls tokens.

        Args:
            x: Images [B,3,H,W].
            n: Block indices to return, in increasing order.

        Returns:
            For each index: (patch tokens [B,N,C], cls token [B,C]), after the final norm.
        """
        wanted = set(n)
        outputs = []
        tokens = self.prepare_tokens(x)
        for i, block in enumerate(self.blocks):
            tokens = block(tokens)
            if i in wanted:
                outputs.append(tokens)
        if len(outputs) != len(wanted):
            raise ValueError(f"blocks {sorted(wanted)} requested, the model has {len(self.blocks)}")
        normed = [self.norm(o) for o in outputs]
        return tuple((o[:, 1:], o[:, 0]) for o in normed)
