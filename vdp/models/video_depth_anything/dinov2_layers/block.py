"""Pre-norm transformer block with LayerScale."""
from __future__ import annotations

import torch
from torch import nn

from vdp.models.video_depth_anything.dinov2_layers.attention import Attention
from vdp.models.video_depth_anything.dinov2_layers.layer_scale import LayerScale
from vdp.models.video_depth_anything.dinov2_layers.mlp import Mlp


class Block(nn.Module):
    """x + ls1(attn(norm1(x))), then + ls2(mlp(norm2(x))).

    Args:
        dim: Token width.
        num_heads: Attention heads.
        mlp_ratio: Hidden width of the MLP relative to ``dim``.
        init_values: LayerScale initial value.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, init_values: float = 1.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.ls1 = LayerScale(dim, init_values)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, init_values)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x [B,N,C]. Returns: [B,N,C]."""
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))
