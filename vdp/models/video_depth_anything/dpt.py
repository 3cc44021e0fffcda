"""DPT head layers: token maps to a 4-level pyramid, fusion blocks and output convs."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vdp.models.video_depth_anything.blocks import FeatureFusionBlock, make_scratch

Features = tuple[tuple[torch.Tensor, torch.Tensor], ...]


class DPTHead(nn.Module):
    """The layers of the DPT depth head and the two steps shared by its variants.

    Args:
        in_channels: Token width of the encoder.
        features: Decoder width.
        use_bn: BatchNorm in the fusion blocks' residual units.
        out_channels: Channels of the four pyramid levels.
        use_clstoken: Concatenate the cls token to every patch token (then project back).
    """

    def __init__(self, in_channels: int, features: int = 256, use_bn: bool = False,
                 out_channels: list[int] | tuple[int, ...] = (256, 512, 1024, 1024),
                 use_clstoken: bool = False) -> None:
        super().__init__()
        if len(out_channels) != 4:
            raise ValueError(f"out_channels must have 4 entries, got {list(out_channels)}")
        self.use_clstoken = use_clstoken
        oc = list(out_channels)
        self.projects = nn.ModuleList(nn.Conv2d(in_channels, c, kernel_size=1) for c in oc)
        self.resize_layers = nn.ModuleList([
            nn.ConvTranspose2d(oc[0], oc[0], kernel_size=4, stride=4),
            nn.ConvTranspose2d(oc[1], oc[1], kernel_size=2, stride=2),
            nn.Identity(),
            nn.Conv2d(oc[3], oc[3], kernel_size=3, stride=2, padding=1),
        ])
        if use_clstoken:
            self.readout_projects = nn.ModuleList(
                nn.Sequential(nn.Linear(2 * in_channels, in_channels), nn.GELU()) for _ in oc)
        self.scratch = make_scratch(oc, features)
        for i in range(1, 5):
            setattr(self.scratch, f"refinenet{i}", FeatureFusionBlock(features, use_bn))
        head_features_2 = 32
        self.scratch.output_conv1 = nn.Conv2d(features, features // 2, kernel_size=3, padding=1)
        self.scratch.output_conv2 = nn.Sequential(
            nn.Conv2d(features // 2, head_features_2, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(head_features_2, 1, kernel_size=1),
            nn.ReLU(),
        )

    def project_levels(self, features: Features, patch_h: int, patch_w: int) -> list[torch.Tensor]:
        """Encoder tokens to the pyramid (x4, x2, x1, /2 of the patch grid).

        Args:
            features: Four (patch tokens [N, h*w, C], cls token [N, C]).
            patch_h: h.
            patch_w: w.

        Returns:
            Four maps [N, out_channels[i], h_i, w_i].
        """
        return [self.project_level(i, tokens, cls, patch_h, patch_w)
                for i, (tokens, cls) in enumerate(features)]

    def project_level(self, i: int, tokens: torch.Tensor, cls: torch.Tensor, patch_h: int,
                      patch_w: int) -> torch.Tensor:
        """Pyramid level `i` (0..3) from one tapped block's tokens (see `project_levels`)."""
        if self.use_clstoken:
            readout = cls.unsqueeze(1).expand_as(tokens)
            tokens = self.readout_projects[i](torch.cat([tokens, readout], dim=-1))
        x = tokens.permute(0, 2, 1).reshape(tokens.shape[0], tokens.shape[-1], patch_h, patch_w)
        return self.resize_layers[i](self.projects[i](x))

    def output(self, path_1: torch.Tensor, patch_h: int, patch_w: int) -> torch.Tensor:
        """The output convs: [N, F, 8h, 8w] -> relu depth [N, 1, 14h, 14w].

        The last conv block runs in float32 with autocast off.
        """
        out = self.scratch.output_conv1(path_1)
        out = F.interpolate(out, size=(patch_h * 14, patch_w * 14), mode="bilinear", align_corners=True)
        with torch.autocast(device_type=out.device.type, enabled=False):
            return self.scratch.output_conv2(out.float())
