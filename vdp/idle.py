"""Idle-priority threads: work that only takes the CPU time the models leave idle.

A CPU model keeps every core busy with its own threads, except in its single-threaded
stretches. A thread at Linux ``SCHED_IDLE`` runs only on a core nothing else wants, so
decoding or encoding there fills those gaps instead of preempting a model thread while the
others wait at a barrier. Threads a ``SCHED_IDLE`` thread starts (FFmpeg's, say) inherit it.
"""
from __future__ import annotations

import os
import threading

IDLE_PRIORITY_AVAILABLE: bool = hasattr(os, "SCHED_IDLE")


def set_idle_priority() -> bool:
    """Move the calling thread (only) to ``SCHED_IDLE``; it cannot portably return.

    Returns:
        Whether the thread now runs at idle priority (False where the OS lacks it or forbids it).
    """
    if not IDLE_PRIORITY_AVAILABLE:
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except OSError:
        return False
    return True


_LOWERED = threading.local()


def idle_once_per_thread() -> bool:
    """`set_idle_priority` for the calling thread the first time it asks; later calls from the
    same thread return that first answer (for work that arrives on any thread of a pool, like
    a threaded Ray actor's calls)."""
    if not hasattr(_LOWERED, "idle"):
        _LOWERED.idle = set_idle_priority()
    return _LOWERED.idle
