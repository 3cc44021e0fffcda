"""PNG sequence writers: a folder of ``frame_000000.png`` files, made atomically (temp folder
renamed on close).

The frames of a batch are encoded in parallel, one thread per core (the encoder releases the
GIL): at 720p one core writes ~75 RGBA frames/s, less than a GPU mattes. `write` returns once
the batch is queued; up to `MAX_PENDING_BATCHES` batches (and `MAX_PENDING_BYTES` of frames
beyond the newest batch) encode while the caller goes on, and `close` waits for the rest,
encoding itself the frames no thread has started. Inside
`encode_in_idle_time()` the encoding threads only get CPU time the rest of the process leaves
idle (for models computing on the same cores).
"""
from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from functools import partial

import numpy as np
import torch

from vdp.errors import EncodeError
from vdp.idle import set_idle_priority
from vdp.io.writers._atomic import AtomicOutput, as_array, rgb_alpha_tensors
from vdp.io.writers.png_encode import LEVELS, filtered_png_parts, png_parts
from vdp.io.writers.png_rows import rgba_sub_rows

MAX_PENDING_BATCHES = 2  # batches a writer may have encoding before `write` waits for the oldest
MAX_PENDING_BYTES = 256 << 20  # ... and their frames' bytes (4K/8K frames), the newest batch aside
#: Encoded batches' buffers a writer keeps for reuse (`_PngSequence._reusable`), and their bytes
#: (1080p batches are kept; 4K/8K RGBA batches go back, as before).
MAX_SPARE_BUFFERS = MAX_PENDING_BATCHES + 1
MAX_SPARE_BYTES = 256 << 20


class _PngSequence(AtomicOutput):
    def __init__(self, path: str | os.PathLike[str], *, start_index: int = 0,
                 level: int = 1, timeout_s: float = 600.0) -> None:
        if start_index < 0:
            raise ValueError(f"start_index must be >= 0, got {start_index}")
        if level not in LEVELS:
            raise ValueError(f"level must be in 0..3, got {level}")
        super().__init__(path, is_dir=True)
        self.start_index = int(start_index)
        self.level = int(level)
        self.timeout_s = float(timeout_s)
        self._queued = 0  # frames handed to the encoding threads so far
        # per batch, oldest first: its frames' (future, job) pairs, their bytes and, for a
        # buffer the writer may reuse once the batch is encoded, the buffer
        self._pending: deque[tuple[list[tuple[Future, Callable[[], None]]], int, np.ndarray | None]] = deque()
        self._spare: list[np.ndarray] = []  # buffers of encoded batches, for reuse

    def _write_images(self, images: np.ndarray, encode: Callable[[np.ndarray], list[bytes]] | None = None,
                      *, reuse: bool = False) -> None:
        """Queue `images` (one PNG each) for the encoding threads; `encode` makes a file's pieces
        (default: `png_parts` at the writer's level); with `reuse`, `images` is kept for
        `_reusable` once encoded."""
        folder, level = self.tmp_path, self.level  # not `self`: a forgotten writer must be collectable

        def write_one(index: int, image: np.ndarray) -> None:
            parts = png_parts(image, level=level) if encode is None else encode(image)
            with open(os.path.join(folder, f"frame_{index:06d}.png"), "wb") as f:
                f.writelines(parts)

        def run() -> None:
            pool = _pool(_IDLE.active)
            first = self.start_index + self._queued
            jobs = [partial(write_one, first + i, images[i]) for i in range(len(images))]
            self._pending.append(([(pool.submit(job), job) for job in jobs], images.nbytes,
                                  images if reuse else None))
            self._queued += len(images)
            while len(self._pending) > MAX_PENDING_BATCHES or (len(self._pending) > 1 and sum(
                    n for _, n, _ in self._pending) - images.nbytes > MAX_PENDING_BYTES):
                self._wait_oldest()
        self._guarded(run)

    def _wait_oldest(self) -> None:
        """Finish the oldest queued batch; raises its first error.

        Frames no thread has started yet are encoded here: an idle-priority pool gets almost
        no CPU while other processes keep the cores busy, and must not stall the job then.
        """
        batch, _, buffer = self._pending.popleft()
        error: BaseException | None = None
        started = []
        for future, job in batch:
            if not future.cancel():
                started.append(future)
                continue
            try:
                job()
            except BaseException as exc:  # raised once the batch's other frames are done
                error = error or exc
        # (a cancelled future counts as done only once a thread dequeues it: wait for the others)
        if wait(started, timeout=self.timeout_s).not_done:
            raise EncodeError(f"{self.path}: encoding a PNG frame took longer than {self.timeout_s:.0f} s")
        if error is not None:
            raise error
        for future in started:
            future.result()
        self.frames_written += len(batch)
        if buffer is not None and len(self._spare) < MAX_SPARE_BUFFERS and \
                sum(b.nbytes for b in self._spare) + buffer.nbytes <= MAX_SPARE_BYTES:
            self._spare.append(buffer)

    def _reusable(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A buffer of an encoded batch with this shape and dtype (its pages already in memory:
        none to fault in and zero), else a new one."""
        for i, buffer in enumerate(self._spare):
            if buffer.shape == shape and buffer.dtype == dtype:
                return self._spare.pop(i)
        return np.empty(shape, dtype)

    def _finalize(self) -> None:
        while self._pending:
            self._wait_oldest()
        self._spare.clear()

    def _discard(self) -> None:
        while self._pending:  # drop unstarted frames, let started ones finish before the folder goes
            wait([future for future, _ in self._pending.popleft()[0] if not future.cancel()],
                 timeout=self.timeout_s)
        self._spare.clear()


class _IdleFlag(threading.local):
    active = False


_IDLE = _IdleFlag()
_POOLS: dict[bool, ThreadPoolExecutor] = {}
_POOL_LOCK = threading.Lock()


@contextmanager
def encode_in_idle_time() -> Iterator[None]:
    """PNG writes made in this thread inside the block encode on idle-priority threads.

    Linux ``SCHED_IDLE`` threads run only when a core would otherwise be idle, so encoding
    fills the gaps a CPU model leaves (its single-threaded stretches) instead of preempting
    one of its threads while the others wait at a barrier. A writer that falls behind encodes
    the frames no idle thread has started itself, so busy cores never stall it. Elsewhere
    (no ``SCHED_IDLE``), encoding runs at normal priority.
    """
    before = _IDLE.active
    _IDLE.active = True
    try:
        yield
    finally:
        _IDLE.active = before


def _pool(idle: bool) -> ThreadPoolExecutor:
    """The process's PNG encoding threads (one per core), shared by every writer; a separate
    set for idle-priority encoding (a thread cannot portably return from ``SCHED_IDLE``)."""
    with _POOL_LOCK:
        if idle not in _POOLS:
            _POOLS[idle] = ThreadPoolExecutor(len(os.sched_getaffinity(0)),
                                              thread_name_prefix="vdp-png-idle" if idle else "vdp-png",
                                              initializer=set_idle_priority if idle else None)
        return _POOLS[idle]


class Png16SequenceWriter(_PngSequence):
    """16-bit grayscale PNGs (e.g. quantized depth), one per frame, bit-exact.

    Args:
        path: Output folder (created on `close()`; an existing one is replaced).
        start_index: Number in the first file name (``frame_{start_index:06d}.png``).
        level: Compression level 0..3 (lossless at any level; see `png_parts`).
        timeout_s: Longest wait for a frame being encoded (`EncodeError` after it).
    """

    def write(self, frames: np.ndarray | torch.Tensor, *, owned: bool = False) -> None:
        """Append frames.

        Args:
            frames: uint16 ``[T,H,W]``, native or big-endian (``">u2"``, PNG's order: no byte swap).
            owned: The caller hands `frames` over and never changes them: no defensive copy.

        Raises:
            ValueError: Wrong dtype or shape.
            EncodeError: Writing failed (the output is aborted).
        """
        images = as_array(frames, name="frames", ndim=3)
        if images.dtype.kind != "u" or images.dtype.itemsize != 2:
            raise ValueError(f"frames must be uint16, got {images.dtype}")
        if not owned or images.dtype != np.dtype(">u2"):
            # encoded after `write` returns (the caller may reuse `frames`); swapped once, here
            images = images.astype(">u2")
        self._write_images(images)

    def row_buffers(self, frames: int, height: int, width: int) -> np.ndarray:
        """A buffer for `write_filtered`: uint8 ``[frames, height, 1 + 2 * width]``, one of
        this writer's earlier ones once their frames are encoded (no fresh pages), else new."""
        return self._reusable((frames, height, 1 + 2 * width), np.dtype(np.uint8))

    def write_filtered(self, rows: np.ndarray) -> None:
        """Append frames given as their PNG image data before deflate, as
        `vdp.outputs.pixel_kernels.quantise_u16_sub_rows` fills them (each row the Sub filter's
        type byte, then the filtered big-endian samples).

        Args:
            rows: uint8 ``[T, H, 1 + 2W]``, best from `row_buffers`; handed over (the writer
                reuses it once its frames are encoded).

        Raises:
            ValueError: Wrong dtype or shape.
            EncodeError: Writing failed (the output is aborted).
        """
        if rows.dtype != np.uint8 or rows.ndim != 3 or rows.shape[2] < 3 or rows.shape[2] % 2 == 0 \
                or 0 in rows.shape:
            raise ValueError(f"rows must be uint8 [T, H, 1 + 2W], got {rows.dtype} {rows.shape}")
        self._write_images(rows, partial(filtered_png_parts, width=(rows.shape[2] - 1) // 2, level=self.level),
                           reuse=True)


class PngRgbaSequenceWriter(_PngSequence):
    """8-bit RGBA PNGs (e.g. foreground + matte), one per frame; alpha is stored exactly.

    Args:
        path: Output folder (created on `close()`; an existing one is replaced).
        start_index: Number in the first file name (``frame_{start_index:06d}.png``).
        level: Compression level 0..3 (lossless at any level; see `png_parts`).
        timeout_s: Longest wait for a frame being encoded (`EncodeError` after it).
    """

    def write(self, rgb: np.ndarray | torch.Tensor, alpha: np.ndarray | torch.Tensor) -> None:
        """Append frames (copied before this returns: the caller may reuse its arrays).

        Args:
            rgb: uint8 ``[T,3,H,W]``.
            alpha: uint8 ``[T,H,W]``.

        Raises:
            ValueError: Wrong dtype or shapes.
            EncodeError: Writing failed (the output is aborted).
        """
        rgb_t, alpha_t = rgb_alpha_tensors(rgb, alpha)
        t, _, h, w = rgb_t.shape
        # interleaved and filtered in one pass, into buffers of batches already encoded
        rows = self._reusable((t, h, 1 + 4 * w), np.dtype(np.uint8))
        planes, mattes = rgb_t.numpy(), alpha_t.numpy()
        for i in range(t):
            rgba_sub_rows(planes[i], mattes[i], rows[i])
        self._write_images(rows, partial(filtered_png_parts, width=w, channels=4, bit_depth=8, level=self.level),
                           reuse=True)


def rgba_frames(rgb: np.ndarray | torch.Tensor, alpha: np.ndarray | torch.Tensor) -> np.ndarray:
    """Interleave ``rgb`` uint8 ``[T,3,H,W]`` and ``alpha`` uint8 ``[T,H,W]`` into ``[T,H,W,4]``."""
    rgb_t, alpha_t = rgb_alpha_tensors(rgb, alpha)
    t, _, h, w = rgb_t.shape
    out = torch.empty((t, h, w, 4), dtype=torch.uint8)  # torch's strided copy beats numpy's here
    out[..., :3].copy_(rgb_t.permute(0, 2, 3, 1))
    out[..., 3].copy_(alpha_t)
    return out.numpy()
