"""VideoDepthAnything: DINOv2 encoder + temporal DPT head, with an explicit-state streaming step."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vdp.models.video_depth_anything.configs import ENCODERS, INTERMEDIATE_LAYERS, WINDOWING
from vdp.models.video_depth_anything.dinov2 import DinoVisionTransformer
from vdp.models.video_depth_anything.dpt import Features
from vdp.models.video_depth_anything.dpt_temporal import DPTHeadTemporal
from vdp.models.video_depth_anything.motion_module import States

#: Frames the image encoder takes at once. It sees each frame alone, so a window in parts
#: gives the same values with a fraction of the working memory (its MLP over 32 frames at
#: 518x924 is half a gigabyte per layer); the temporal head still sees the whole window.
FRAMES_PER_PASS = 8


@dataclass(frozen=True)
class StreamCache:
    """Temporal states of the frames a streaming model has seen (the official cache rule).

    Attributes:
        entries: One entry per cached frame; each holds the normalised, pre-PE states of
            every temporal attention sub-block, ``[(B*h_k*w_k), 1, C_k]``.
        frame_ids: The stream frame index of each entry (entries may repeat a frame).
        frames_seen: Frames processed so far (the next frame's index).
    """

    entries: tuple[tuple[torch.Tensor, ...], ...]
    frame_ids: tuple[int, ...]
    frames_seen: int


class VideoDepthAnything(nn.Module):
    """Video Depth Anything (relative or metric), attribute names as in the official checkpoints.

    Args:
        encoder: ``vits``, ``vitb`` or ``vitl`` (see `configs.ENCODERS`).
        features: Decoder width.
        out_channels: Pyramid channels of the head.
        use_bn: BatchNorm in the decoder's residual units.
        use_clstoken: Use the cls token as readout in the head.
        num_frames: Longest clip (length of the temporal positional tables).
        pe: Temporal positional encoding type (``ape``).
        metric: Metric depth checkpoint (changes only the windowed procedure: no alignment).
    """

    def __init__(self, encoder: str = "vitl", features: int = 256,
                 out_channels: list[int] | tuple[int, ...] = (256, 512, 1024, 1024),
                 use_bn: bool = False, use_clstoken: bool = False, num_frames: int = 32,
                 pe: str = "ape", metric: bool = False) -> None:
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {sorted(ENCODERS)}, got {encoder!r}")
        self.encoder = encoder
        self.num_frames = num_frames
        self.metric = metric
        self.intermediate_layer_idx = list(INTERMEDIATE_LAYERS[encoder])
        self.frames_per_pass = FRAMES_PER_PASS
        self.pretrained = DinoVisionTransformer(**ENCODERS[encoder])
        self.head = DPTHeadTemporal(self.pretrained.embed_dim, features, use_bn, out_channels,
                                    use_clstoken, num_frames, pe)

    def forward_features(self, x: torch.Tensor) -> Features:
        """Encoder outputs of the tapped blocks.

        Args:
            x: Normalised images [N,3,H,W], H and W multiples of 14.

        Returns:
            Four (patch tokens [N, h*w, C], cls [N, C]).
        """
        step = self.frames_per_pass
        if x.shape[0] <= step:
            return self.pretrained.get_intermediate_layers(x, self.intermediate_layer_idx)
        parts = [self.pretrained.get_intermediate_layers(x[i:i + step], self.intermediate_layer_idx)
                 for i in range(0, x.shape[0], step)]
        return tuple((torch.cat([p[k][0] for p in parts]), torch.cat([p[k][1] for p in parts]))
                     for k in range(len(parts[0])))

    def forward_depth(self, features: Features, size: tuple[int, int], frame_length: int,
                      history: States | None = None) -> tuple[torch.Tensor, States]:
        """Depth from encoder features.

        Args:
            features: From `forward_features` for B*T images.
            size: Image size (H, W) in pixels.
            frame_length: T.
            history: Cached temporal states (see `StreamCache`) or None.

        Returns:
            (depth [B,T,H,W], >= 0; new temporal states, one per attention sub-block).
        """
        h, w = size
        depth, states = self.head(features, h // 14, w // 14, frame_length, history)
        depth = F.relu(F.interpolate(depth, size=(h, w), mode="bilinear", align_corners=True))
        return depth.squeeze(1).unflatten(0, (-1, frame_length)), states

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Depth of a clip.

        Args:
            x: Normalised frames [B,T,3,H,W], T <= num_frames, H and W multiples of 14.

        Returns:
            Depth [B,T,H,W] (relative inverse depth, or metric depth for metric weights).
        """
        if x.ndim != 5:
            raise ValueError(f"expected [B,T,3,H,W], got {tuple(x.shape)}")
        b, t, _, h, w = x.shape
        if t > self.num_frames:
            raise ValueError(f"clip of {t} frames is longer than num_frames={self.num_frames}")
        depth, _ = self.forward_depth(self.forward_features(x.flatten(0, 1)), (h, w), t)
        return depth

    def stream_step(self, x: torch.Tensor, cache: StreamCache | None
                    ) -> tuple[torch.Tensor, StreamCache]:
        """Depth of the next frame of a stream, attending to cached earlier frames.

        The first frame runs alone and its states fill the cache `num_frames` times. Each later
        frame attends to cache entries [0:2] and the last ``num_frames - 3``, plus itself (the
        positional table is re-applied to that sequence). Its states are appended; past frame
        index `overlap` (10) entry 1 is dropped after each step, so the cache settles at 42
        entries: frame 0, the frame 41 back and the latest frames.

        Args:
            x: One normalised frame per stream [B,3,H,W].
            cache: The previous step's cache, or None for the first frame. Not modified.

        Returns:
            (depth [B,H,W], the new cache).
        """
        if x.ndim != 4:
            raise ValueError(f"expected one frame per stream [B,3,H,W], got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        history = None
        if cache is not None:
            recent = self.num_frames - 3
            chosen = cache.entries[:2] + cache.entries[-recent:]
            history = [torch.cat([e[j] for e in chosen], dim=1) for j in range(self.head.num_states)]
        depth, states = self.forward_depth(self.forward_features(x), (h, w), 1, history)
        entry = tuple(states)
        if cache is None:
            new = StreamCache((entry,) * self.num_frames, (0,) * self.num_frames, 1)
        else:
            index = cache.frames_seen
            entries, ids = cache.entries + (entry,), cache.frame_ids + (index,)
            if index > WINDOWING.overlap:
                entries, ids = entries[:1] + entries[2:], ids[:1] + ids[2:]
            new = StreamCache(entries, ids, index + 1)
        return depth[:, 0], new
