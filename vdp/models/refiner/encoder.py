"""Per-frame CNN encoder of the refiner (runs on the low-resolution teacher)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Encoder(nn.Module):
    """Three 3x3 convolutions (the second with stride 2) plus a per-frame context vector.

    The context (spatial mean of the features, projected) is added everywhere, so each
    location knows what the whole frame did, e.g. a frame-wide scale jump.

    Args:
        in_channels: Input channels.
        channels: Widths of the three convolutions: the skip width, then the feature widths.
    """

    def __init__(self, in_channels: int, channels: tuple[int, int, int]) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.conv1 = nn.Conv2d(in_channels, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(c2, c3, 3, padding=1)
        self.context = nn.Linear(c3, c3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode frames.

        Args:
            x: ``[F, in_channels, h, w]`` (frames flattened into the batch).

        Returns:
            The skip features ``[F, c1, h, w]`` and the scan features
            ``[F, c3, ceil(h/2), ceil(w/2)]``.
        """
        skip = F.gelu(self.conv1(x))
        feats = F.gelu(self.conv3(F.gelu(self.conv2(skip))))
        return skip, feats + self.context(feats.mean(dim=(2, 3)))[:, :, None, None]
