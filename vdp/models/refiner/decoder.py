"""Per-frame CNN decoder: temporal features to the raw (unbounded) log-depth residual."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Decoder(nn.Module):
    """Upsample x2, join the encoder's skip features, two 3x3 convolutions.

    Two outputs per location: the raw log-depth residual (its weights start at zero) and the
    memory-gate logit of the full-res smoother (starts at `gate_bias`, little memory), so an
    untrained refiner is close to the identity.

    Args:
        in_channels: Scan feature channels.
        skip_channels: Encoder skip channels.
        channels: Hidden width.
        gate_bias: Initial gate logit.
    """

    def __init__(self, in_channels: int, skip_channels: int, channels: int,
                 gate_bias: float = -3.0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels + skip_channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, 2, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        with torch.no_grad():
            self.conv2.bias.copy_(torch.tensor([0.0, gate_bias]))

    def forward(self, feats: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """Decode frames.

        Args:
            feats: Scan output ``[F, in_channels, h2, w2]``.
            skip: Encoder skip ``[F, skip_channels, h, w]``.

        Returns:
            ``[F, 2, h, w]``: raw residual, gate logit.
        """
        up = F.interpolate(feats, size=skip.shape[2:], mode="bilinear", align_corners=False)
        return self.conv2(F.gelu(self.conv1(torch.cat([up, skip], dim=1))))
