"""Temporal module (AnimateDiff-style): attention along time at every spatial position.

Each module can take, per attention sub-block, a *history*: normalised pre-PE hidden states
of earlier frames ``[(B*h*w), L, C]``. The new frames' states are then returned so that a
streaming caller can cache them (explicit state; the module keeps none).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

States = list[torch.Tensor]

#: Positions x frames a temporal transformer processes at once (1024 positions of a 32-frame
#: window; a streaming step's one frame takes 32768 positions). Attention runs along time, so
#: positions are independent: splitting them bounds the working memory (the feed-forward of 32
#: frames x 10k positions is gigabytes) and changes no value.
POSITION_FRAMES_PER_PASS = 32 * 1024


def sinusoid_table(max_len: int, dim: int) -> torch.Tensor:
    """``[1, max_len, dim]``: sin at even channels, cos at odd ones, frequency 10000^(-2i/dim).

    Always built on the CPU (a model built on the meta device gets it replaced by the loaded buffer).
    """
    position = torch.arange(max_len, dtype=torch.float32, device="cpu").unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device="cpu") * (-math.log(10000.0) / dim))
    pe = torch.zeros(1, max_len, dim, device="cpu")
    pe[0, :, 0::2] = torch.sin(position * div_term)
    pe[0, :, 1::2] = torch.cos(position * div_term)
    return pe


class PositionalEncoding(nn.Module):
    """Adds a position table to a sequence; the table is a persistent buffer (loaded, not recomputed).

    Args:
        d_model: Channel count.
        max_len: Longest sequence.
    """

    def __init__(self, d_model: int, max_len: int = 32) -> None:
        super().__init__()
        self.register_buffer("pe", sinusoid_table(max_len, d_model), persistent=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x [N,L,C] with L <= max_len. Returns: x + pe[:, :L]."""
        length = x.shape[1]
        if length > self.pe.shape[1]:
            raise ValueError(f"sequence of {length} frames is longer than the temporal table "
                             f"({self.pe.shape[1]} frames, the model's num_frames)")
        return x + self.pe[:, :length]


class TemporalAttention(nn.Module):
    """Multi-head self-attention over time with a positional table added to q, k and v's input.

    Args:
        dim: Channel count.
        heads: Attention heads.
        max_len: Length of the positional table.
    """

    def __init__(self, dim: int, heads: int = 8, max_len: int = 32) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"temporal attention dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim), nn.Dropout(0.0)])
        self.pos_encoder = PositionalEncoding(dim, max_len)

    def forward(self, x: torch.Tensor, video_length: int, history: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend along time; queries are the `video_length` new frames.

        Args:
            x: Normalised hidden states [(B*T), hw, C].
            video_length: T.
            history: Earlier frames' states [(B*hw), L, C] prepended to keys and values, or None.

        Returns:
            (output [(B*T), hw, C], this call's states [(B*hw), T, C] for caching).
        """
        bt, hw, c = x.shape
        b = bt // video_length
        seq = x.reshape(b, video_length, hw, c).permute(0, 2, 1, 3).reshape(b * hw, video_length, c)
        state = seq
        if history is not None:
            seq = torch.cat([history.to(seq.dtype), seq], dim=1)
        seq = self.pos_encoder(seq)
        q = self.to_q(seq[:, -video_length:])
        k = self.to_k(seq)
        v = self.to_v(seq)
        n, length = k.shape[:2]
        hd = c // self.heads
        q = q.reshape(n, video_length, self.heads, hd).transpose(1, 2)
        k = k.reshape(n, length, self.heads, hd).transpose(1, 2)
        v = v.reshape(n, length, self.heads, hd).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, video_length, c)
        out = self.to_out[1](self.to_out[0](out))
        out = out.reshape(b, hw, video_length, c).permute(0, 2, 1, 3).reshape(bt, hw, c)
        return out, state


class GEGLU(nn.Module):
    """Linear to twice the width; value * gelu(gate) with value the first half.

    Args:
        dim_in: Input width.
        dim_out: Output width.
    """

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    """GEGLU to ``mult * dim``, then linear back to ``dim``.

    Args:
        dim: Width.
        mult: Hidden width multiplier.
    """

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        self.net = nn.ModuleList([GEGLU(dim, dim * mult), nn.Dropout(0.0), nn.Linear(dim * mult, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class TemporalTransformerBlock(nn.Module):
    """Pre-norm temporal attention sub-blocks followed by a GEGLU feed-forward.

    Args:
        dim: Width.
        heads: Attention heads.
        num_attention_blocks: Attention sub-blocks.
        max_len: Length of the positional tables.
    """

    def __init__(self, dim: int, heads: int, num_attention_blocks: int = 2, max_len: int = 32) -> None:
        super().__init__()
        self.attention_blocks = nn.ModuleList(
            TemporalAttention(dim, heads, max_len) for _ in range(num_attention_blocks))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(num_attention_blocks))
        self.ff = FeedForward(dim)
        self.ff_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, video_length: int, history: States | None = None
                ) -> tuple[torch.Tensor, States]:
        """Args: x [(B*T), hw, C]; history one tensor per sub-block or None.

        Returns: (output [(B*T), hw, C], one state per sub-block).
        """
        states = []
        for i, (attn, norm) in enumerate(zip(self.attention_blocks, self.norms)):
            out, state = attn(norm(x), video_length, None if history is None else history[i])
            x = x + out
            states.append(state)
        return x + self.ff(self.ff_norm(x)), states


class TemporalTransformer3DModel(nn.Module):
    """GroupNorm per frame, proj_in, transformer blocks, proj_out, plus the input.

    Args:
        in_channels: Width.
        num_attention_heads: Heads of every attention sub-block.
        num_layers: Transformer blocks.
        num_attention_blocks: Attention sub-blocks per transformer block.
        norm_num_groups: GroupNorm groups.
        temporal_max_len: Length of the positional tables.
    """

    def __init__(self, in_channels: int, num_attention_heads: int = 8, num_layers: int = 1,
                 num_attention_blocks: int = 2, norm_num_groups: int = 32,
                 temporal_max_len: int = 32) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(norm_num_groups, in_channels, eps=1e-6, affine=True)
        self.proj_in = nn.Linear(in_channels, in_channels)
        self.transformer_blocks = nn.ModuleList(
            TemporalTransformerBlock(in_channels, num_attention_heads, num_attention_blocks, temporal_max_len)
            for _ in range(num_layers))
        self.proj_out = nn.Linear(in_channels, in_channels)
        self.states_per_block = num_attention_blocks
        self.position_frames_per_pass = POSITION_FRAMES_PER_PASS

    def forward(self, x: torch.Tensor, history: States | None = None) -> tuple[torch.Tensor, States]:
        """Args: x [B,C,T,h,w]; history one tensor per attention sub-block (all blocks) or None.

        Returns: (output [B,C,T,h,w], one state per attention sub-block).
        """
        b, c, t, h, w = x.shape
        frames = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        hidden = self.norm(frames).permute(0, 2, 3, 1).reshape(b * t, h * w, c)
        outs, parts = [], []
        step = max(1, self.position_frames_per_pass // t)
        for p in range(0, h * w, step):  # positions are independent here
            q = slice(p, p + step)
            out, states = self._positions(hidden[:, q], t, _positions_of(history, b, q))
            outs.append(out)
            parts.append(states)
        hidden = torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]
        states = [_join_positions([s[i] for s in parts], b) for i in range(len(parts[0]))]
        out = hidden.reshape(b * t, h, w, c).permute(0, 3, 1, 2) + frames
        return out.reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4), states

    def _positions(self, hidden: torch.Tensor, t: int, history: States | None) -> tuple[torch.Tensor, States]:
        """The transformer on some positions of every frame: [(B*T), n, C] -> same, states."""
        hidden = self.proj_in(hidden)
        states: States = []
        k = self.states_per_block
        for i, block in enumerate(self.transformer_blocks):
            hidden, block_states = block(hidden, t, None if history is None else history[i * k:(i + 1) * k])
            states.extend(block_states)
        return self.proj_out(hidden), states


def _positions_of(history: States | None, b: int, q: slice) -> States | None:
    """The cached states ``[(B*hw), L, C]`` of the positions `q`."""
    if history is None:
        return None
    return [s.unflatten(0, (b, -1))[:, q].flatten(0, 1) for s in history]


def _join_positions(parts: list[torch.Tensor], b: int) -> torch.Tensor:
    """States of consecutive position ranges, ``[(B*n_i), T, C]`` each, as ``[(B*hw), T, C]``."""
    if len(parts) == 1:
        return parts[0]
    return torch.cat([s.unflatten(0, (b, -1)) for s in parts], dim=1).flatten(0, 1)


class TemporalModule(nn.Module):
    """The temporal layer inserted into the DPT head.

    Args:
        in_channels: Width.
        num_attention_heads: Heads.
        num_transformer_block: Transformer blocks.
        num_attention_blocks: Attention sub-blocks per transformer block.
        temporal_max_len: Frames the positional tables cover.
        pos_embedding_type: Only ``ape`` (absolute, a loaded table).
    """

    def __init__(self, in_channels: int, num_attention_heads: int = 8, num_transformer_block: int = 1,
                 num_attention_blocks: int = 2, temporal_max_len: int = 32,
                 pos_embedding_type: str = "ape") -> None:
        super().__init__()
        if pos_embedding_type != "ape":
            raise ValueError(f"pos_embedding_type must be 'ape', got {pos_embedding_type!r}")
        self.temporal_transformer = TemporalTransformer3DModel(
            in_channels, num_attention_heads, num_transformer_block, num_attention_blocks,
            temporal_max_len=temporal_max_len)

    @property
    def num_states(self) -> int:
        """How many history tensors `forward` takes and returns."""
        tt = self.temporal_transformer
        return len(tt.transformer_blocks) * tt.states_per_block

    def forward(self, x: torch.Tensor, history: States | None = None) -> tuple[torch.Tensor, States]:
        """Args: x [B,C,T,h,w]; history or None. Returns: (output [B,C,T,h,w], states)."""
        return self.temporal_transformer(x, history)
