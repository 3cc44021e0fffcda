"""Host memory: large freed buffers go back to the operating system.

glibc's malloc serves small requests from its heap and maps large ones separately; a mapped
block is returned to the system when freed, freed heap space usually is not. The threshold
between the two starts at 128 KB and rises to the size of every mapped block freed (up to
32 MB), so after a few model windows a process's activations and batch-sized buffers come from
the heap and its resident memory stays at its highest point (the depth preset's peak, 6 frames:
~290 MB higher at 1080p, ~560 MB at 8K).

`return_large_buffers` fixes the threshold at `MMAP_THRESHOLD`: a 1080p frame (6-8 MB) is still
reused from the heap, so the per-frame path pays no page faults, while activations of a window
and 4K/8K frames are mapped and unmapped.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import threading

#: Requests from this size up are mapped on their own (and returned to the system when freed).
MMAP_THRESHOLD = 16 << 20
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h

_lock = threading.Lock()
_done: bool | None = None


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
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, size))
