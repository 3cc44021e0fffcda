"""Per-channel learnt residual scaling."""
from __future__ import annotations

import torch
from torch import nn


class LayerScale(nn.Module):
    """Multiplies the last dimension by ``gamma``.

    Args:
        dim: Channel count.
        init_values: Initial value of every ``gamma`` entry.
    """

    def __init__(self, dim: int, init_values: float = 1.0) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_values)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma
