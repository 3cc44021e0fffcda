"""vdp.idle: idle priority for the calling thread only, inherited by the threads it starts."""
from __future__ import annotations

import os
import threading

import pytest

from vdp.idle import IDLE_PRIORITY_AVAILABLE, idle_once_per_thread, set_idle_priority


@pytest.mark.skipif(not IDLE_PRIORITY_AVAILABLE, reason="SCHED_IDLE is Linux-only")
def test_idle_priority_is_per_thread_and_inherited():
    seen: dict[str, int] = {}

    def child() -> None:
        seen["child"] = os.sched_getscheduler(0)

    def worker() -> None:
        seen["applied"] = set_idle_priority()
        seen["worker"] = os.sched_getscheduler(0)
        t = threading.Thread(target=child)
        t.start()
        t.join()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == {"applied": True, "worker": os.SCHED_IDLE, "child": os.SCHED_IDLE}
    assert os.sched_getscheduler(0) != os.SCHED_IDLE


@pytest.mark.skipif(not IDLE_PRIORITY_AVAILABLE, reason="SCHED_IDLE is Linux-only")
def test_idle_once_per_thread_lowers_every_thread_that_asks():
    from concurrent.futures import ThreadPoolExecutor

    barrier = threading.Barrier(3)

    def call() -> tuple[bool, int]:
        barrier.wait()  # three calls on three different threads of the pool
        first = idle_once_per_thread()
        return first and idle_once_per_thread(), os.sched_getscheduler(0)

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: call(), range(3)))
    assert results == [(True, os.SCHED_IDLE)] * 3
    assert os.sched_getscheduler(0) != os.SCHED_IDLE
