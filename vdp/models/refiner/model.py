"""The refiner: frozen-teacher depth in, bounded log-depth residual out.

``D_out = D_teacher * exp(rho)`` with ``rho = b(D) * tanh(r / b(D))`` and ``b(D) = log(1 +
alpha + beta / D)``, so ``|D_out - D_teacher| <= alpha * D + beta`` holds at every pixel: metric
scale cannot drift further than that, and ``r = 0`` is the identity. ``r`` is also centred to
zero mean over each window's own frames before the bound (scale lock: the refiner redistributes
a window's depth between frames and pixels rather than moving it; the bound's tanh and the
window blend leave a small shift, at most 0.22 % of a held-out sequence's geometric-mean depth
in the evaluation's teacher families).

``r`` has two parts. The low-res path (teacher log depth at 1/downsample): encoder ->
bidirectional selective scan along time at each location of the encoder's half-res grid ->
decoder (skip at the low-res grid) -> a residual and a memory gate, both upsampled bilinearly.
The high-res refinement: a per-pixel selective scan of the full-res teacher under that gate
(`TemporalSmoother`), which removes single-pixel flicker the low-res path cannot see.

An RGB refiner (``config.rgb``) also reads the window's video frames: low-res colour, luma
edges and colour change join the encoder's inputs, and the per-pixel colour change gates the
smoother's memory (`vdp.models.refiner.colour`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vdp.models.refiner.colour import RGB_CHANNELS, RefinerInputError, check_rgb, colour_inputs
from vdp.models.refiner.config import RefinerConfig
from vdp.models.refiner.confidence import downsample_log_depth
from vdp.models.refiner.decoder import Decoder
from vdp.models.refiner.encoder import Encoder
from vdp.models.refiner.smoother import TemporalSmoother
from vdp.models.refiner.ssm import BiSSM

#: Depth input channels: normalised log depth, temporal deviation, confidence, has-confidence,
#: keyframe (an RGB refiner adds `RGB_CHANNELS`).
IN_CHANNELS = 5
#: Gain on the temporal deviation channel (log-depth jitter is a few hundredths).
DEVIATION_GAIN = 20.0


@dataclass
class RefinerOutput:
    """What a forward pass returns.

    Attributes:
        rho: Log-depth residual at full resolution ``[B, T, H, W]``.
        raw_low: Unbounded residual on the low-res grid ``[B, T, h, w]`` (for diagnostics).
        gate_low: Smoother memory gate on the low-res grid ``[B, T, h, w]``.
        saturation: ``|rho| / b(D)`` at full resolution ``[B, T, H, W]`` (1 = at the bound).
    """

    rho: torch.Tensor
    raw_low: torch.Tensor
    gate_low: torch.Tensor
    saturation: torch.Tensor


def residual_bound(config: RefinerConfig, depth: torch.Tensor) -> torch.Tensor:
    """Largest log residual at each pixel, ``log(1 + alpha + beta / D)``: it keeps
    ``|dD| <= alpha * D + beta``."""
    return torch.log1p(config.alpha + config.beta / depth.clamp_min(1e-6))


class Refiner(nn.Module):
    """Residual temporal refiner (see module docstring).

    Args:
        config: Sizes and bound; see `RefinerConfig`.
    """

    def __init__(self, config: RefinerConfig) -> None:
        super().__init__()
        self.config = config
        c = config.enc_channels[-1]
        self.in_channels = IN_CHANNELS + (RGB_CHANNELS if config.rgb else 0)
        self.encoder = Encoder(self.in_channels, config.enc_channels)
        self.ssm = nn.ModuleList(BiSSM(c, config.d_inner, config.d_state, config.dt_rank)
                                 for _ in range(config.ssm_layers))
        self.decoder = Decoder(c, config.enc_channels[0], config.dec_channels)
        self.smoother = TemporalSmoother(motion_gate=config.rgb)

    def forward(self, depth: torch.Tensor, confidence: torch.Tensor | None = None,
                is_key: torch.Tensor | None = None, rgb: torch.Tensor | None = None) -> RefinerOutput:
        """Predict the residual for one window per batch item.

        Args:
            depth: Positive teacher depth ``[B, T, H, W]`` (context keyframes first, if any).
            confidence: Low-res confidence ``[B, T, h, w]`` in [0, 1], or None (not used).
            is_key: Bool ``[T]``, True at context keyframes; None means no keyframes.
            rgb: The frames of `depth`, uint8 (or unit float) ``[B, T, 3, H, W]``; required by
                an RGB refiner, ignored by a depth-only one.

        Returns:
            `RefinerOutput`.

        Raises:
            RefinerInputError: An RGB refiner got no RGB, or RGB of another shape.
        """
        b, t, hh, ww = depth.shape
        ell = downsample_log_depth(depth, self.config.downsample)
        h, w = ell.shape[2:]
        level = ell - ell.mean(dim=(1, 2, 3), keepdim=True)
        deviation = (ell - ell.mean(dim=1, keepdim=True)) * DEVIATION_GAIN
        if confidence is None:
            conf, has_conf = torch.ones_like(ell), torch.zeros_like(ell)
        else:
            conf, has_conf = confidence.to(ell.dtype), torch.ones_like(ell)
        key = torch.zeros(t, dtype=ell.dtype, device=ell.device) if is_key is None \
            else is_key.to(device=ell.device, dtype=ell.dtype)
        key = key[None, :, None, None].expand_as(ell)
        x = torch.stack([level, deviation, conf, has_conf, key], dim=2)
        change = None
        if self.config.rgb:
            if rgb is None:
                raise RefinerInputError("this refiner reads the video's RGB frames; none were given")
            check_rgb(rgb, depth.shape)
            colour, change = colour_inputs(rgb, (h, w))
            x = torch.cat([x, colour.to(x.dtype)], dim=2)
        x = x.reshape(b * t, self.in_channels, h, w)

        skip, feats = self.encoder(x)
        c, h2, w2 = feats.shape[1:]
        # One time-major sequence per batch item and location of the half-res grid.
        seq = feats.reshape(b, t, c, h2, w2).permute(1, 0, 3, 4, 2).reshape(t, b * h2 * w2, c)
        for layer in self.ssm:
            seq = layer(seq)
        feats = seq.reshape(t, b, h2, w2, c).permute(1, 0, 4, 2, 3).reshape(b * t, c, h2, w2)
        low = self.decoder(feats, skip)                                    # [B*T, 2, h, w]

        up = F.interpolate(low, size=(hh, ww), mode="bilinear", align_corners=False)
        up = up.reshape(b, t, 2, hh, ww)
        log_depth = torch.log(depth.clamp_min(1e-6))
        raw = up[:, :, 0] + self.smoother(log_depth, torch.sigmoid(up[:, :, 1]), change)
        # Scale lock: the residual has zero mean over the window's own frames, so a window's
        # geometric-mean depth is the teacher's; only frame-to-frame changes are refined.
        own = (1 - key).mean(dim=(2, 3))[:, :, None, None]                 # [B, T, 1, 1]
        mean = (raw * own).sum(dim=(1, 2, 3), keepdim=True) / (own.sum(dim=1, keepdim=True) * hh * ww)
        raw = raw - mean
        bound = residual_bound(self.config, depth)
        sat = torch.tanh(raw / bound)
        low = low.reshape(b, t, 2, h, w)
        return RefinerOutput(rho=bound * sat, raw_low=low[:, :, 0],
                             gate_low=torch.sigmoid(low[:, :, 1]), saturation=sat.abs())
