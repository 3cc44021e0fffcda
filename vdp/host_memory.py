"""Host memory: large freed buffers go back to the operating system.

glibc's malloc serves small requests from its heap and maps large ones separately; a mapped
block is returned to the system when freed, freed heap space usually is not. The threshold
between the two starts at 128 KB and rises to the size of every mapped block freed (up to
32 MB), so after a few model windows a process's activations and batch-sized buffers come from
the heap and its resident memory stays at its highest point (the depth preset's peak, 6 frames:
~290 MB higher at 1080p, ~560 MB at 8K).

`return_large_buffers` fixes the threshold at `MMAP_THRESHOLD`: a 1080p frame (6-8 MB) is still
reused from the heap, so the per-frame path pays no page faults, while activations of a window
and 4K/8K frames are mapped and unmapped. The heap keeps up to `TRIM_THRESHOLD` free at its top
(glibc's own rule once the threshold moves) for the next frame's buffers.

A model computing on the CPU frees and allocates activations of hundreds of MB layer after
layer; mapped one by one, each is a set of fresh pages the kernel zeroes (19-21 % of all CPU
time of a CPU-only depth+matte run). Inside `reuse_freed_memory` freed blocks stay in the heap
and serve the next requests; the engine opens it around CPU stage calls (`vdp.engine.step`):
~16-18 % less wall time, peak memory +0.6 GB at 1080p. The free pages stay between blocks, so
the next call, and the next chunk on the same actor, reuse them, and go back to the system once
no block has run for `TRIM_AFTER_IDLE_S`, or for `IDLE_FACTOR` times the longest block since
the last trim if that is longer (handing them back after every chunk made each chunk's first
batches fault in fresh pages again: in this project's VMs up to 0.35 s of system time per 1080p
batch of 16; a CPU-only Ray stage waits about as long as the other stages compute, seconds per
call, and trimming in that wait cost the matte stage 22 % of its CPU in zeroing pages). Not
for writers: a Ray writer actor doing the same wrote more slowly (heap pages are not torch's
huge pages). Not beyond 4K frames (`REUSE_MAX_PIXELS`): there the heap would keep gigabytes of
freed full-resolution buffers (8K: 4.6-5.0 GB peak instead of 3.2).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import cache

#: Requests from this size up are mapped on their own (and returned to the system when freed).
MMAP_THRESHOLD = 16 << 20
#: Free space at the top of a heap kept for the next requests, with `MMAP_THRESHOLD` fixed (twice
#: it, as glibc's own adjustment sets it): freed frame-sized buffers (a 1080p frame's PNG rows or
#: deflated data, 2-8 MB, in an encoding thread's heap) serve the next frame instead of going
#: back and faulting in zeroed pages again (~1 ms of CPU per 16-bit PNG frame).
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD
#: Frames up to this size (4K UHD) let a CPU model call reuse freed memory (`reuse_freed_memory`).
REUSE_MAX_PIXELS = 3840 * 2160
_M_MMAP_THRESHOLD = -3  # mallopt's parameter numbers in glibc's malloc.h
_M_MMAP_MAX = -4
_M_TRIM_THRESHOLD = -1
_DEFAULT_MMAP_MAX = 65536  # glibc's defaults: most mapped blocks, free heap top kept (bytes)
_DEFAULT_TRIM_THRESHOLD = 128 << 10
_NEVER = 2 ** 31 - 1

#: Seconds without an open `reuse_freed_memory` block before the heap's free pages go back, at
#: least; and at least `IDLE_FACTOR` times the longest block since the last trim (a stage that
#: waits while the other stages of a CPU-only pipeline compute is not done).
TRIM_AFTER_IDLE_S = 2.0
IDLE_FACTOR = 3.0

_lock = threading.Lock()
_wake = threading.Condition(_lock)  # the trimming thread waits on it
_done: bool | None = None
_reusing = 0  # open `reuse_freed_memory` blocks
_idle_since: float | None = None  # when the last block ended; None: one is open, or trimmed since
_busy_since = 0.0  # when the open blocks began
_longest_block_s = 0.0  # the longest time blocks stayed open since the last trim
_trimmer: threading.Thread | None = None


def _after_fork_in_child() -> None:
    """A forked child starts with fresh locks (the trimming thread may have held the lock at
    the fork) and no trimming thread; its blocks start one when they end."""
    global _lock, _wake, _trimmer
    _lock = threading.Lock()
    _wake = threading.Condition(_lock)
    _trimmer = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def return_large_buffers() -> bool:
    """Fix this process's malloc threshold at `MMAP_THRESHOLD` (once; later calls are free).

    Returns:
        Whether it is set (False where the C library is not glibc).
    """
    global _done
    with _lock:
        if _done is None:
            _done = _set_threshold(MMAP_THRESHOLD)
        return _done


def _set_threshold(size: int) -> bool:
    libc = _glibc()
    return libc is not None and bool(libc.mallopt(_M_MMAP_THRESHOLD, size)) and \
        bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def _trim_threshold() -> int:
    """The process's trim threshold outside `reuse_freed_memory` blocks."""
    return TRIM_THRESHOLD if _done else _DEFAULT_TRIM_THRESHOLD


@contextmanager
def reuse_freed_memory() -> Iterator[None]:
    """Inside the block, freed blocks of any size stay in the heap and serve the next requests
    (no mapping, no zeroed pages). Between blocks the heap keeps its free pages too, so the next
    block (the next stage call, or the next chunk's stream) finds them; once no block has been
    open for `TRIM_AFTER_IDLE_S` and `IDLE_FACTOR` times the longest block, a background thread
    hands them back to the system (``malloc_trim``). Process-wide (other threads' requests
    meanwhile too); nests; a no-op where the C library is not glibc."""
    global _reusing, _idle_since, _busy_since, _longest_block_s
    libc = _glibc()
    with _wake:
        _reusing += 1
        if _reusing == 1 and libc is not None:
            _idle_since = None  # a trim not yet made is not needed any more
            _busy_since = time.monotonic()
            libc.mallopt(_M_MMAP_MAX, 0)
            libc.mallopt(_M_TRIM_THRESHOLD, _NEVER)
    try:
        yield
    finally:
        with _wake:
            _reusing -= 1
            if _reusing == 0 and libc is not None:
                libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)  # large requests outside: mapped again
                _idle_since = time.monotonic()
                _longest_block_s = max(_longest_block_s, _idle_since - _busy_since)
                _start_trimmer()
                _wake.notify()


def reuse_for_frames(pixels: int) -> AbstractContextManager[None]:
    """`reuse_freed_memory` for work on frames of `pixels` pixels, up to `REUSE_MAX_PIXELS`;
    for larger frames nothing (the heap would keep gigabytes of freed full-resolution buffers)."""
    return reuse_freed_memory() if 0 < pixels <= REUSE_MAX_PIXELS else nullcontext()


def _start_trimmer() -> None:
    """Start the thread that trims the heap once blocks stop (caller holds `_wake`)."""
    global _trimmer
    if _trimmer is None or not _trimmer.is_alive():
        _trimmer = threading.Thread(target=_trim_when_idle, name="vdp-heap-trim", daemon=True)
        _trimmer.start()


def trim_delay_s() -> float:
    """Seconds without a block before the free pages go back (see `reuse_freed_memory`)."""
    return max(TRIM_AFTER_IDLE_S, IDLE_FACTOR * _longest_block_s)


def _trim_when_idle() -> None:
    global _idle_since, _longest_block_s
    with _wake:
        while True:
            if _idle_since is None:
                _wake.wait()
                continue
            left = _idle_since + trim_delay_s() - time.monotonic()
            if left > 0:
                _wake.wait(left)
                continue
            _idle_since = None
            _longest_block_s = 0.0  # reset first: the pages start going back during the trim
            libc = _glibc()
            libc.mallopt(_M_TRIM_THRESHOLD, _trim_threshold())
            libc.malloc_trim(0)


@cache
def _glibc() -> ctypes.CDLL | None:
    """glibc with `mallopt` and `malloc_trim` typed, or None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    except (OSError, AttributeError, TypeError):
        return None
    return libc
