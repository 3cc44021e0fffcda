"""Selective state-space scan (Mamba-style) along time, in pure PyTorch.

Every spatial location of the refiner's low-resolution feature map is one independent
sequence. For channel ``d`` and state ``n`` the scan is::

    h[t, d, n] = exp(delta[t, d] * A[d, n]) * h[t-1, d, n] + delta[t, d] * B[t, n] * x[t, d]
    y[t, d]    = sum_n C[t, n] * h[t, d, n] + D[d] * x[t, d]

``delta``, ``B`` and ``C`` depend on the input ("selective"), so the scan decides per step how
much of its memory to keep: a long memory where the input is steady, a reset where it jumps.
`selective_scan` is a loop over time: cost and memory are linear in the sequence length.
`selective_scan_reference` evaluates the same recurrence in closed form in quadratic time and
exists to check the loop (tests). No fused kernel is needed; the loop runs on CPU and GPU.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def selective_scan(x: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                   C: torch.Tensor, D: torch.Tensor, *, reverse: bool = False) -> torch.Tensor:
    """Run the selective scan over time, in O(T).

    Tensors are time-major so that each step reads contiguous memory.

    Args:
        x: Inputs ``[T, S, Di]`` (S independent sequences).
        delta: Positive step sizes ``[T, S, Di]``.
        A: Negative state matrix (diagonal per channel) ``[Di, N]``.
        B: Input projections ``[T, S, N]``.
        C: Output projections ``[T, S, N]``.
        D: Skip weights ``[Di]``.
        reverse: Scan from the last step to the first (the anti-causal direction).

    Returns:
        Outputs ``[T, S, Di]``.
    """
    a_t = A.t().contiguous()                                   # [N, Di]: Di innermost
    x, delta, B, C = x.contiguous(), delta.contiguous(), B.contiguous(), C.contiguous()
    steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    if scans_in_place(x, delta, A, B, C, D):
        return _scan_in_place(x, delta, a_t, B, C, D, steps)
    return _scan_autograd(x, delta, a_t, B, C, D, steps)


def scans_in_place(*tensors: torch.Tensor | None) -> bool:
    """Whether a scan over `tensors` may reuse its buffers: no gradient wanted, one dtype, no
    autocast (which would change the dtypes of the per-step results)."""
    present = [v for v in tensors if v is not None]
    if torch.is_grad_enabled() and any(v.requires_grad for v in present):
        return False
    return (len({v.dtype for v in present}) == 1
            and not torch.is_autocast_enabled(present[0].device.type))


def _scan_autograd(x: torch.Tensor, delta: torch.Tensor, a_t: torch.Tensor, B: torch.Tensor,
                   C: torch.Tensor, D: torch.Tensor, steps: range) -> torch.Tensor:
    """`selective_scan` with fresh tensors each step (what autograd needs to keep)."""
    h = x.new_zeros(x.shape[1], a_t.shape[0], x.shape[2])      # [S, N, Di]
    ys: list[torch.Tensor] = [x] * x.shape[0]
    for t in steps:
        dt = delta[t]
        h = torch.exp(dt.unsqueeze(1) * a_t) * h + (dt * x[t]).unsqueeze(1) * B[t].unsqueeze(-1)
        ys[t] = torch.bmm(C[t].unsqueeze(1), h).squeeze(1)
    return torch.stack(ys) + x * D


def _scan_in_place(x: torch.Tensor, delta: torch.Tensor, a_t: torch.Tensor, B: torch.Tensor,
                   C: torch.Tensor, D: torch.Tensor, steps: range) -> torch.Tensor:
    """`_scan_autograd`'s operations in the same order, into buffers reused every step.

    Without gradients nothing needs the intermediate states, and a step's tensors are large
    (``S x N x Di`` floats, 15 MB for a 1080p depth layer): allocating them afresh made every
    step pay page faults. The result is bit for bit the same (tested).
    """
    h = x.new_zeros(x.shape[1], a_t.shape[0], x.shape[2])      # [S, N, Di]
    decay, inflow = torch.empty_like(h), torch.empty_like(h)
    drive = torch.empty_like(x[0])
    y = torch.empty_like(x)
    for t in steps:
        dt = delta[t]
        torch.mul(dt.unsqueeze(1), a_t, out=decay).exp_()
        h.mul_(decay)
        torch.mul(dt, x[t], out=drive)
        h.add_(torch.mul(drive.unsqueeze(1), B[t].unsqueeze(-1), out=inflow))
        torch.bmm(C[t].unsqueeze(1), h, out=y[t].unsqueeze(1))
    return y + x * D


def selective_scan_reference(x: torch.Tensor, delta: torch.Tensor, A: torch.Tensor,
                             B: torch.Tensor, C: torch.Tensor, D: torch.Tensor, *,
                             reverse: bool = False) -> torch.Tensor:
    """The same recurrence in closed form, O(T^2): ``h_t = sum_s prod_(s<r<=t) a_r * b_s``.

    Args and Returns: as `selective_scan`.
    """
    if reverse:
        return selective_scan_reference(x.flip(0), delta.flip(0), A, B.flip(0), C.flip(0), D).flip(0)
    t_len, s, di = x.shape
    ys = []
    for t in range(t_len):
        h = x.new_zeros(s, di, A.shape[1])
        for u in range(t + 1):
            decay = torch.exp(delta[u + 1:t + 1, :, :, None].sum(0) * A)   # prod of a_r, r in (u, t]
            h = h + decay * (delta[u, :, :, None] * x[u, :, :, None]) * B[u, :, None, :]
        ys.append(torch.einsum("sdn,sn->sd", h, C[t]))
    return torch.stack(ys) + x * D


class SelectiveSSM(nn.Module):
    """One direction of a Mamba-style selective SSM block (no temporal convolution).

    Args:
        d_model: Channels in and out.
        d_inner: Hidden channels the scan runs on.
        d_state: State size per hidden channel.
        dt_rank: Rank of the step-size projection.
        reverse: Scan backwards in time.
    """

    def __init__(self, d_model: int, d_inner: int, d_state: int, dt_rank: int, *,
                 reverse: bool = False) -> None:
        super().__init__()
        self.reverse = reverse
        self.d_inner, self.d_state, self.dt_rank = d_inner, d_state, dt_rank
        self.in_proj = nn.Linear(d_model, 2 * d_inner)
        self.x_proj = nn.Linear(d_inner, dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(dt_rank, d_inner)
        # S4D-real init: A[d, n] = -(n + 1); step sizes start log-uniform in [1e-2, 0.5].
        a = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(d_inner, 1)
        self.A_log = nn.Parameter(torch.log(a))
        self.D = nn.Parameter(torch.ones(d_inner))
        self.out_proj = nn.Linear(d_inner, d_model)
        with torch.no_grad():
            dt = torch.exp(torch.rand(d_inner) * (math.log(0.5) - math.log(1e-2)) + math.log(1e-2))
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))    # softplus^-1(dt)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Args: u ``[T, S, d_model]`` (time-major). Returns ``[T, S, d_model]``."""
        x, z = self.in_proj(u).chunk(2, dim=-1)
        x, z = F.silu(x.contiguous()), z.contiguous()
        dbc = self.x_proj(x)
        dt, b, c = torch.split(dbc, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(dt))
        y = selective_scan(x, delta, -torch.exp(self.A_log), b, c, self.D, reverse=self.reverse)
        return self.out_proj(y * F.silu(z))


class BiSSM(nn.Module):
    """Forward and backward selective scans with a pre-norm residual.

    Args:
        d_model: Channels in and out.
        d_inner: Hidden channels of each scan.
        d_state: State size per hidden channel.
        dt_rank: Rank of the step-size projection.
    """

    def __init__(self, d_model: int, d_inner: int, d_state: int, dt_rank: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.fwd = SelectiveSSM(d_model, d_inner, d_state, dt_rank)
        self.bwd = SelectiveSSM(d_model, d_inner, d_state, dt_rank, reverse=True)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Args: u ``[T, S, d_model]`` (time-major). Returns ``[T, S, d_model]``."""
        v = self.norm(u)
        return u + self.fwd(v) + self.bwd(v)
