"""Merging chunk results into one seamless stream of frames, in order.

Chunk ``k`` runs the ``n = overlap`` frames before its start (its *head*), which chunk
``k-1`` owns (the last ``n`` frames of chunk ``k-1``, its *tail*). Each layer is merged by
its policy:

``align`` (relative depth: affine-invariant, each chunk has its own scale and shift)
    Chunk ``k`` is mapped by the least-squares scale/shift ``a*x + b`` that best fits its
    head to the already merged tail of chunk ``k-1`` (so chunk ``k`` inherits the alignment
    of every chunk before it); on the overlap the two are cross-faded linearly, with weights
    ``(i+1)/(n+1)`` for chunk ``k`` at overlap frame ``i``.
``blend`` (metric depth: already in metres)
    Cross-fade only, no fit.
``keep`` (recurrent and other layers: ``alpha``, ``foreground``, ``stereo`` ...)
    Chunk ``k-1``'s values are kept; chunk ``k``'s head only warmed its state.

Layers that are not floating point are always ``keep``. With no overlap, chunks are simply
concatenated (and relative depth is not aligned).

`ChunkMerger` takes each chunk's result batches in frame order, holds at most one tail
(``n`` frames) and emits final batches to a sink in frame order. Frames it has already
emitted are ignored when they arrive again, so a chunk whose run failed part-way can simply be
run again from its start (stages are deterministic, the re-run yields the same values).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np
import torch

from vdp.engine.budget import batch_nbytes
from vdp.engine.chunks import Chunk
from vdp.types import FrameBatch

Policy = Literal["align", "blend", "keep"]
Sink = Callable[[FrameBatch], None]


def merge_policies(depth_kind: str | None) -> dict[str, Policy]:
    """Per-layer policies of a job: ``depth`` is aligned (relative) or blended (metric).

    Args:
        depth_kind: ``relative``, ``metric``, or None when the job has no depth stage.

    Returns:
        Layer name -> policy; layers not listed are ``keep``.
    """
    if depth_kind is None:
        return {}
    if depth_kind not in ("relative", "metric"):
        raise ValueError(f"depth_kind must be 'relative' or 'metric', got {depth_kind!r}")
    return {"depth": "align" if depth_kind == "relative" else "blend"}


@dataclass(frozen=True)
class Fit:
    """An affine map ``a*x + b`` of one layer of one chunk.

    Attributes:
        scale: ``a``.
        shift: ``b``.
        residual_rms: Root-mean-square misfit on the overlap after the map (layer units).
        degenerate: The head was (nearly) constant, so only the shift was fitted.
    """

    scale: float = 1.0
    shift: float = 0.0
    residual_rms: float = 0.0
    degenerate: bool = False

    def apply(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``a*x + b`` as a new tensor, or in `out` (float32, on the CPU, `x`'s shape) where `x`
        is a float32 CPU layer; `x` itself for the identity.

        float32 layers are mapped frame by frame with numpy on one core: the same float32
        products and sums as torch's, without its thread fan-out on a busy writer.
        """
        if self.is_identity:
            return x
        if not by_frame(x):
            return x * self.scale + self.shift
        if out is None:
            out = torch.empty(x.shape, dtype=torch.float32)
        elif out.shape != x.shape or out.dtype != torch.float32 or out.device.type != "cpu":
            raise ValueError(f"out must be float32 on the CPU shaped {tuple(x.shape)}, got {out.dtype} "
                             f"{tuple(out.shape)} on {out.device}")
        src, dst = x.detach().numpy(), out.numpy()
        for i in range(src.shape[0]):
            self.map_into(src[i], dst[i])
        return out

    @property
    def is_identity(self) -> bool:
        """Scale 1 and shift 0: frames are left as they are (x*1 + 0 would turn -0 into +0)."""
        return self.scale == 1.0 and self.shift == 0.0

    def map_into(self, src: np.ndarray, out: np.ndarray) -> None:
        """``out = a*src + b`` for one float32 numpy frame: `apply`'s arithmetic, no new memory."""
        np.multiply(src, np.float32(self.scale), out=out)
        np.add(out, np.float32(self.shift), out=out)


def by_frame(x: torch.Tensor) -> bool:
    """Whether `Fit.apply` and `crossfade` work on `x` frame by frame with numpy (float32 CPU
    layers of two or more dimensions), into memory they may be given; else as tensor expressions."""
    return x.dtype == torch.float32 and x.ndim >= 2 and x.device.type == "cpu"


#: Values summed per step of `fit_scale_shift` (two float64 blocks of it stay in the CPU's cache).
FIT_BLOCK = 1 << 15


def fit_scale_shift(x: torch.Tensor, y: torch.Tensor) -> Fit:
    """Least-squares ``a, b`` minimising ``||a*x + b - y||^2`` over finite pixels.

    Sums are accumulated in float64 block by block (`FIT_BLOCK` values of a frame at a time,
    converted into two small reused buffers): no full-frame float64 copy, and numpy's
    single-threaded reductions give the same sums whatever else the process runs.

    Args:
        x: Values to map, ``[T,...]``.
        y: Target values, same shape.

    Returns:
        The fit (identity when no pixel is finite in both).
    """
    if x.shape != y.shape:
        raise ValueError(f"x {tuple(x.shape)} and y {tuple(y.shape)} must have the same shape")
    n = 0
    sx = sy = sxx = sxy = syy = 0.0
    bx, by = np.empty(FIT_BLOCK), np.empty(FIT_BLOCK)
    for xt, yt in zip(x, y):
        xf, yf = _flat_numpy(xt), _flat_numpy(yt)
        for start in range(0, xf.size, FIT_BLOCK):
            stop = min(xf.size, start + FIT_BLOCK)
            xb, yb = bx[:stop - start], by[:stop - start]
            np.copyto(xb, xf[start:stop])
            np.copyto(yb, yf[start:stop])
            bsx, bsy = float(np.add.reduce(xb)), float(np.add.reduce(yb))
            if not (np.isfinite(bsx) and np.isfinite(bsy)):  # NaN/inf in the block: mask them
                ok = np.isfinite(xb) & np.isfinite(yb)
                xb, yb = xb[ok], yb[ok]
                bsx, bsy = float(np.add.reduce(xb)), float(np.add.reduce(yb))
            n += xb.size
            sx += bsx
            sy += bsy
            sxx += float(np.einsum("i,i->", xb, xb))  # products summed without temporaries
            sxy += float(np.einsum("i,i->", xb, yb))
            syy += float(np.einsum("i,i->", yb, yb))
    if n == 0:
        return Fit(degenerate=True)
    mx, my = sx / n, sy / n
    vxx = sxx / n - mx * mx
    vxy = sxy / n - mx * my
    vyy = syy / n - my * my
    if vxx <= 1e-12 * max(1.0, mx * mx):
        return Fit(1.0, my - mx, max(0.0, vyy) ** 0.5, degenerate=True)
    a = vxy / vxx
    b = my - a * mx
    rms = max(0.0, vyy - a * vxy) ** 0.5  # residual variance of the LSQ line
    return Fit(a, b, rms)


def _flat_numpy(frame: torch.Tensor) -> np.ndarray:
    """One frame as a flat float32/float64 numpy array (a view where it can be)."""
    flat = frame.detach().reshape(-1)
    if flat.dtype not in (torch.float32, torch.float64):
        flat = flat.float()
    return flat.cpu().numpy()


def crossfade_weights(n: int) -> torch.Tensor:
    """Weight of the later chunk at each of `n` overlap frames: ``(i+1)/(n+1)``, float32 [n]."""
    return torch.arange(1, n + 1, dtype=torch.float64).div(n + 1).float()


def crossfade(prev: torch.Tensor, new: torch.Tensor, fit: Fit, w: torch.Tensor) -> torch.Tensor:
    """The overlap's blend ``prev * (1 - w) + fit(new) * w``, frame ``i`` weighted by ``w[i]``.

    float32 CPU layers are blended frame by frame with numpy on one core into one new tensor
    and one frame of scratch (the same float32 operations in the same order as the tensor
    expression, so the same values), where the expression made four overlap-sized temporaries
    of fresh pages (16 frames of 1080p depth: 128 MB each).

    Args:
        prev: The earlier chunk's frames of the overlap, ``[T,...]``.
        new: The later chunk's, same shape.
        fit: Maps `new` onto `prev`'s scale (`fit_scale_shift`; identity for blended layers).
        w: float32 ``[T]`` weights of `new` (`crossfade_weights`).
    """
    if not (by_frame(prev) and by_frame(new)) or prev.shape != new.shape:
        wt = w.view(-1, *([1] * (prev.ndim - 1))).to(prev.dtype)
        return prev * (1 - wt) + fit.apply(new).to(prev.dtype) * wt
    out = torch.empty(prev.shape, dtype=torch.float32)
    src, dst, later = prev.detach().numpy(), out.numpy(), new.detach().numpy()
    scratch = np.empty(src.shape[1:], np.float32)
    identity = fit.is_identity
    for i, wi in enumerate(w.numpy().astype(np.float32)):
        np.multiply(src[i], np.float32(1) - wi, out=dst[i])
        if identity:
            np.multiply(later[i], wi, out=scratch)
        else:
            fit.map_into(later[i], scratch)
            np.multiply(scratch, wi, out=scratch)
        np.add(dst[i], scratch, out=dst[i])
    return out


@dataclass
class SeamRecord:
    """How chunk ``index`` was joined to the one before it (for the job report)."""

    index: int
    fits: dict[str, Fit] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"chunk": self.index, **{name: {"scale": round(f.scale, 6), "shift": round(f.shift, 6),
                                               "residual_rms": round(f.residual_rms, 6),
                                               "degenerate": f.degenerate}
                                        for name, f in self.fits.items()}}


class ChunkMerger:
    """Turns the result batches of consecutive chunks into final batches, in frame order.

    Feed chunk 0's batches, call `end_chunk`, feed chunk 1's, and so on; `finish` after the
    last chunk. Each chunk's batches must come in frame order and together cover its run range
    ``[run_start, stop)``; frames already consumed are ignored (re-runs are harmless).

    Args:
        chunks: The job's chunk plan.
        policies: Layer -> policy (`merge_policies`); unlisted layers are ``keep``.
        sink: Receives final batches in frame order.
    """

    def __init__(self, chunks: list[Chunk], policies: dict[str, Policy], sink: Sink) -> None:
        if not chunks:
            raise ValueError("a merge needs at least one chunk")
        self.chunks = chunks
        self.policies = policies
        self.sink = sink
        self.index = 0  # the chunk being consumed
        self.position = chunks[0].run_start  # next frame expected from that chunk
        self.frames_emitted = 0
        self.seams: list[SeamRecord] = []
        self.warnings: list[str] = []
        self._head: list[FrameBatch] = []
        self._tail: FrameBatch | None = None  # owned by the previous chunk, awaiting the blend
        self._fits: dict[str, Fit] = {}
        self._pending_tail = Gathered(self._next_overlap())  # this chunk's own tail, being collected

    @property
    def done(self) -> bool:
        return self.index >= len(self.chunks)

    @property
    def chunk(self) -> Chunk:
        return self.chunks[self.index]

    def feed(self, batch: FrameBatch) -> None:
        """Consume result frames of the current chunk (any batch size, frame order)."""
        if self.done:
            raise ValueError("all chunks are merged; nothing more can be fed")
        if len(batch) == 0:
            return
        c = self.chunk
        first, last = int(batch.indices[0]), int(batch.indices[-1])
        if last < self.position:
            return  # already consumed (a re-run)
        if first > self.position or last >= c.stop:
            raise ValueError(f"chunk {c.index} expected frame {self.position} next (range "
                             f"{c.run_start}-{c.stop - 1}), got frames {first}-{last}")
        batch = batch.slice(self.position - first)
        while len(batch):
            if self.position < c.start:  # head: collect until the overlap is complete
                take = min(len(batch), c.start - self.position)
                self._head.append(batch.slice(0, take))
                self._advance(take)
                batch = batch.slice(take)
                if self.position == c.start:
                    self._join()
            else:
                self._core(batch)
                self._advance(len(batch))
                batch = batch.slice(len(batch))

    def end_chunk(self) -> None:
        """The current chunk delivered all its frames; move to the next one."""
        c = self.chunk
        if self.position != c.stop:
            raise ValueError(f"chunk {c.index} ended at frame {self.position}, expected {c.stop}")
        tail = self._pending_tail.take()
        if tail is not None:
            self._tail = tail
        self.index += 1
        if not self.done:
            self.position = self.chunk.run_start
            self._fits = {}
            self._pending_tail = Gathered(self._next_overlap())

    def finish(self) -> None:
        """Emit what is held after the last chunk; fails if a chunk is missing."""
        if not self.done:
            raise ValueError(f"merge finished at chunk {self.index} of {len(self.chunks)}")
        if self._tail is not None:
            self._emit(self._tail)
            self._tail = None

    # -- internals --------------------------------------------------------------------------

    def _advance(self, n: int) -> None:
        self.position += n

    def _next_overlap(self) -> int:
        nxt = self.index + 1
        return self.chunks[nxt].overlap if nxt < len(self.chunks) else 0

    def _core(self, batch: FrameBatch) -> None:
        """Owned frames of the current chunk: map, emit, and hold the next chunk's overlap."""
        batch = self._mapped(batch)
        hold_from = self.chunk.stop - self._next_overlap()
        first = int(batch.indices[0])
        split = max(0, min(len(batch), hold_from - first))
        if split:
            self._emit(batch.slice(0, split))
        if split < len(batch):
            self._pending_tail.add(batch.slice(split))  # copied: a held tail must not pin its batch

    def _mapped(self, batch: FrameBatch) -> FrameBatch:
        if not self._fits:
            return batch
        return batch.with_layers(**{n: f.apply(batch.layers[n]) for n, f in self._fits.items()
                                    if n in batch.layers})

    def _join(self) -> None:
        """The head is complete: fit it to the held tail, cross-fade, emit the overlap frames."""
        head = FrameBatch.concat(self._head)
        self._head = []
        tail, self._tail = self._tail, None
        if tail is None or len(tail) != len(head):
            raise ValueError(f"chunk {self.chunk.index}: overlap of {len(head)} frames but "
                             f"{0 if tail is None else len(tail)} held from the chunk before")
        record = SeamRecord(self.chunk.index)
        w = crossfade_weights(len(head))
        merged = {}
        for name, prev in tail.layers.items():
            policy = self.policies.get(name, "keep")
            new = head.layers.get(name)
            if policy == "keep" or new is None or not prev.is_floating_point() or not new.is_floating_point():
                merged[name] = prev
                continue
            fit = fit_scale_shift(new, prev) if policy == "align" else Fit()
            if fit.degenerate and policy == "align":
                self.warnings.append(f"chunk {self.chunk.index}: layer {name!r} is constant on the "
                                     f"overlap; only its shift was aligned")
            if policy == "align":
                self._fits[name] = fit
                record.fits[name] = fit
            merged[name] = crossfade(prev, new, fit, w)
        self.seams.append(record)
        self._emit(tail.with_layers(**merged))

    def _emit(self, batch: FrameBatch) -> None:
        if len(batch):
            self.frames_emitted += len(batch)
            self.sink(batch)


class Gathered:
    """Up to `n` consecutive frames (a chunk's head or tail), copied once into storage made for
    all of them when the first arrive, in the first part's memory layout."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self._batch: FrameBatch | None = None

    @property
    def full(self) -> bool:
        return self.count == self.n

    @property
    def nbytes(self) -> int:
        return 0 if self._batch is None else batch_nbytes(self._batch.slice(0, self.count))

    def add(self, part: FrameBatch) -> None:
        """Copy `part` after the frames gathered so far.

        Raises:
            ValueError: More than `n` frames, or other layers than the first part's.
        """
        if self.count + len(part) > self.n:
            raise ValueError(f"{self.count + len(part)} frames gathered for {self.n}")
        if self._batch is None:
            self._batch = FrameBatch(_rows_like(part.frames, self.n), _rows_like(part.indices, self.n),
                                     _rows_like(part.pts_seconds, self.n),
                                     {k: _rows_like(v, self.n) for k, v in part.layers.items()},
                                     starts_segment=part.starts_segment)
        elif set(part.layers) != set(self._batch.layers):
            raise ValueError(f"layer names differ: {sorted(self._batch.layers)} vs {sorted(part.layers)}")
        rows = slice(self.count, self.count + len(part))
        b = self._batch
        for dst, src in [(b.frames, part.frames), (b.indices, part.indices), (b.pts_seconds, part.pts_seconds),
                         *((b.layers[k], v) for k, v in part.layers.items())]:
            dst[rows] = src
        self.count += len(part)

    def take(self) -> FrameBatch | None:
        """The frames gathered (None if none), handed out once; gathering starts over."""
        batch = None if self._batch is None or not self.count else self._batch.slice(0, self.count)
        self._batch, self.count = None, 0
        return batch


def _rows_like(t: torch.Tensor, n: int) -> torch.Tensor:
    """Uninitialised `n` rows shaped and laid out like `t`'s (channels-last stays channels-last)."""
    fmt = torch.channels_last if t.dim() == 4 and not t.is_contiguous() and \
        t.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    return torch.empty((n, *t.shape[1:]), dtype=t.dtype, memory_format=fmt)
