"""`MattingNetwork`: Robust Video Matting, composed from the blocks beside this file.

Attribute names are the official checkpoint keys, so ``rvm_mobilenetv3.pth`` /
``rvm_resnet50.pth`` load with ``strict=True``. The model keeps no per-video state: the
recurrent states r1..r4 go in and come out of `forward`.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vdp.models.rvm.decoder import Projection, RecurrentDecoder
from vdp.models.rvm.deep_guided_filter import DeepGuidedFilterRefiner
from vdp.models.rvm.fast_guided_filter import FastGuidedFilterRefiner
from vdp.models.rvm.lraspp import LRASPP
from vdp.models.rvm.mobilenetv3 import MobileNetV3LargeEncoder
from vdp.models.rvm.resnet import ResNet50Encoder

Variant = Literal["mobilenetv3", "resnet50"]
RefinerName = Literal["deep_guided_filter", "fast_guided_filter"]

VARIANTS: tuple[str, ...] = ("mobilenetv3", "resnet50")
REFINERS: tuple[str, ...] = ("deep_guided_filter", "fast_guided_filter")

#: variant -> (backbone, ASPP width, decoder widths of decode3..decode0)
_PRESETS: dict[str, tuple[type[nn.Module], int, list[int]]] = {
    "mobilenetv3": (MobileNetV3LargeEncoder, 128, [80, 40, 32, 16]),
    "resnet50": (ResNet50Encoder, 256, [128, 64, 32, 16]),
}


def auto_downsample_ratio(height: int, width: int) -> float:
    """The official automatic ratio: the longer side becomes 512 px, never upsampled.

    Args:
        height: Frame height in pixels.
        width: Frame width in pixels.

    Returns:
        ``min(512 / max(height, width), 1)``, e.g. 0.4 for 1280x720, 1.0 up to 512 px.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    return min(512 / max(height, width), 1.0)


class MattingNetwork(nn.Module):
    """Robust Video Matting network.

    Args:
        variant: Backbone, ``"mobilenetv3"`` or ``"resnet50"``.
        refiner: ``"deep_guided_filter"`` (the official checkpoints' refiner, 15 ``refiner.*``
            keys) or ``"fast_guided_filter"`` (no parameters; drop ``refiner.*`` keys from an
            official checkpoint before loading).
    """

    def __init__(self, variant: Variant = "mobilenetv3",
                 refiner: RefinerName = "deep_guided_filter") -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        if refiner not in REFINERS:
            raise ValueError(f"refiner must be one of {REFINERS}, got {refiner!r}")
        self.variant = variant
        backbone_cls, aspp_channels, decoder_channels = _PRESETS[variant]
        self.backbone = backbone_cls()
        f1, f2, f3, f4 = backbone_cls.channels
        self.aspp = LRASPP(f4, aspp_channels)
        self.decoder = RecurrentDecoder([f1, f2, f3, aspp_channels], decoder_channels)
        self.project_mat = Projection(decoder_channels[3], 4)
        self.project_seg = Projection(decoder_channels[3], 1)
        if refiner == "deep_guided_filter":
            self.refiner: nn.Module = DeepGuidedFilterRefiner(decoder_channels[3])
        else:
            self.refiner = FastGuidedFilterRefiner()

    def forward(self, src: torch.Tensor, r1: torch.Tensor | None = None,
                r2: torch.Tensor | None = None, r3: torch.Tensor | None = None,
                r4: torch.Tensor | None = None, downsample_ratio: float = 1.0,
                segmentation_pass: bool = False) -> list[torch.Tensor]:
        """Matte one batch of frames or clips.

        Args:
            src: RGB in [0,1], ``[B,3,H,W]`` or ``[B,T,3,H,W]`` (T frames processed in order).
            r1, r2, r3, r4: Recurrent states ``[B,C,h,w]`` from the previous call, or None
                (zeros) at the start of a stream.
            downsample_ratio: Scale of the internal low-resolution pass, in (0, 1]; below 1 the
                refiner upsamples the result (see `auto_downsample_ratio`).
            segmentation_pass: Return segmentation logits instead of the matte.

        Returns:
            ``[fgr, pha, r1, r2, r3, r4]``: foreground ``[B,(T,)3,H,W]`` and alpha
            ``[B,(T,)1,H,W]``, both clamped to [0,1], and the states after the last frame; or
            ``[seg, r1, r2, r3, r4]`` with raw logits ``[B,(T,)1,h,w]`` at the downsampled size.
        """
        if src.ndim not in (4, 5) or src.shape[-3] != 3:
            raise ValueError(f"src must be [B,3,H,W] or [B,T,3,H,W], got {tuple(src.shape)}")
        if not 0 < downsample_ratio <= 1:
            raise ValueError(f"downsample_ratio must be in (0, 1], got {downsample_ratio}")
        src_sm = src if downsample_ratio == 1 else self._downsample(src, downsample_ratio)
        f1, f2, f3, f4 = self.backbone(src_sm)
        f4 = self.aspp(f4)
        hid, *rec = self.decoder(src_sm, f1, f2, f3, f4, r1, r2, r3, r4)
        if segmentation_pass:
            return [self.project_seg(hid), *rec]
        fgr_residual, pha = self.project_mat(hid).split([3, 1], dim=-3)
        if downsample_ratio != 1:
            fgr_residual, pha = self.refiner(src, src_sm, fgr_residual, pha, hid)
        fgr = (fgr_residual + src).clamp_(0.0, 1.0)  # in place on the fresh sum
        return [fgr, pha.clamp(0.0, 1.0), *rec]

    @staticmethod
    def _downsample(x: torch.Tensor, ratio: float) -> torch.Tensor:
        """Bilinear resize by scale factor (grid step 1/ratio, size floor(H*ratio))."""
        flat = x.flatten(0, 1) if x.ndim == 5 else x
        out = F.interpolate(flat, scale_factor=ratio, mode="bilinear", align_corners=False,
                            recompute_scale_factor=False)
        return out.unflatten(0, x.shape[:2]) if x.ndim == 5 else out
