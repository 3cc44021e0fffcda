"""The temporal DPT head: DPT with four temporal modules inserted in the decoder."""
from __future__ import annotations

import torch
from torch import nn

from vdp.models.video_depth_anything.dpt import DPTHead, Features
from vdp.models.video_depth_anything.motion_module import States, TemporalModule


class DPTHeadTemporal(DPTHead):
    """DPT head whose levels 3 and 4 and fused paths 4 and 3 attend along time.

    Args:
        in_channels: Token width of the encoder.
        features: Decoder width.
        use_bn: BatchNorm in the residual units.
        out_channels: Channels of the four pyramid levels.
        use_clstoken: Use the cls token as readout.
        num_frames: Frames the temporal positional tables cover.
        pe: Positional encoding type (``ape``).
    """

    def __init__(self, in_channels: int, features: int = 256, use_bn: bool = False,
                 out_channels: list[int] | tuple[int, ...] = (256, 512, 1024, 1024),
                 use_clstoken: bool = False, num_frames: int = 32, pe: str = "ape") -> None:
        super().__init__(in_channels, features, use_bn, out_channels, use_clstoken)
        widths = [out_channels[2], out_channels[3], features, features]
        self.motion_modules = nn.ModuleList(
            TemporalModule(c, num_attention_heads=8, num_transformer_block=1, num_attention_blocks=2,
                           temporal_max_len=num_frames, pos_embedding_type=pe) for c in widths)

    @property
    def num_states(self) -> int:
        """History tensors the head takes and returns (one per temporal attention sub-block)."""
        return sum(m.num_states for m in self.motion_modules)

    def _temporal(self, k: int, x: torch.Tensor, frames: int, history: States | None,
                  states: States) -> torch.Tensor:
        """Run motion module `k` on [N=B*T, C, h, w]; collect its states."""
        mm = self.motion_modules[k]
        hist = None
        if history is not None:
            start = sum(m.num_states for m in self.motion_modules[:k])
            hist = history[start:start + mm.num_states]
        n, c, h, w = x.shape
        y, new = mm(x.reshape(n // frames, frames, c, h, w).permute(0, 2, 1, 3, 4), hist)
        states.extend(new)
        return y.permute(0, 2, 1, 3, 4).reshape(n, c, h, w)

    def forward(self, features: Features, patch_h: int, patch_w: int, frame_length: int,
                history: States | None = None, micro_batch_size: int = 2
                ) -> tuple[torch.Tensor, States]:
        """Decode depth for B*T frames.

        Args:
            features: Four (patch tokens [B*T, h*w, C], cls [B*T, C]) from the encoder.
            patch_h: h.
            patch_w: w.
            frame_length: T.
            history: Cached states per attention sub-block ([(B*h_k*w_k), L, C_k]) or None.
            micro_batch_size: Frames per chunk in the full-resolution stages (memory only).

        Returns:
            (depth [B*T, 1, 14h, 14w] after ReLU, new states [(B*h_k*w_k), T, C_k] per sub-block).
        """
        # Levels 3 and 4 attend along time: the whole window. Levels 1 and 2 (x4 and x2 of the
        # patch grid, the largest maps) only meet the temporal paths per frame: made per micro-batch.
        (t1, c1), (t2, c2), (t3, c3), (t4, c4) = features
        layer_3 = self.project_level(2, t3, c3, patch_h, patch_w)
        layer_4 = self.project_level(3, t4, c4, patch_h, patch_w)
        states: States = []
        layer_3 = self._temporal(0, layer_3, frame_length, history, states)
        layer_4 = self._temporal(1, layer_4, frame_length, history, states)
        s = self.scratch
        layer_3_rn = s.layer3_rn(layer_3)
        layer_4_rn = s.layer4_rn(layer_4)
        path_4 = s.refinenet4(layer_4_rn, size=layer_3_rn.shape[2:])
        path_4 = self._temporal(2, path_4, frame_length, history, states)
        path_3 = s.refinenet3(path_4, layer_3_rn, size=(2 * patch_h, 2 * patch_w))  # level 2's size
        path_3 = self._temporal(3, path_3, frame_length, history, states)
        outs = []
        for i in range(0, path_3.shape[0], micro_batch_size):
            j = slice(i, i + micro_batch_size)
            layer_1_rn = s.layer1_rn(self.project_level(0, t1[j], c1[j], patch_h, patch_w))
            layer_2_rn = s.layer2_rn(self.project_level(1, t2[j], c2[j], patch_h, patch_w))
            path_2 = s.refinenet2(path_3[j], layer_2_rn, size=layer_1_rn.shape[2:])
            path_1 = s.refinenet1(path_2, layer_1_rn)
            outs.append(self.output(path_1, patch_h, patch_w))
        return torch.cat(outs), states
