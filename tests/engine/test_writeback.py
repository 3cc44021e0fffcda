"""BackgroundWriter: order kept, bounded queue, errors re-raised in the driver's thread."""
from __future__ import annotations

import threading
import time

import pytest
import torch

from vdp.engine.writeback import BackgroundWriter
from vdp.types import FrameBatch


def batch(k: int) -> FrameBatch:
    idx = torch.tensor([k])
    return FrameBatch(torch.zeros(1, 3, 2, 2, dtype=torch.uint8), idx, idx.double())


def test_writes_in_order_off_the_calling_thread():
    seen, threads = [], set()

    def write(b):
        seen.append(int(b.indices[0]))
        threads.add(threading.get_ident())

    w = BackgroundWriter(write)
    for k in range(20):
        w.submit(batch(k))
    w.close()
    assert seen == list(range(20)) and threading.get_ident() not in threads


def test_slow_writer_blocks_submit_beyond_max_pending():
    release = threading.Event()
    w = BackgroundWriter(lambda b: release.wait(5), max_pending=2)
    t0 = time.monotonic()
    for k in range(3):  # one being written + two waiting: all accepted at once
        w.submit(batch(k))
    assert time.monotonic() - t0 < 1
    threading.Timer(0.5, release.set).start()
    w.submit(batch(3))  # blocks until the writer frees a slot
    assert time.monotonic() - t0 >= 0.4
    w.close()


def test_write_error_is_raised_in_the_driver():
    def write(b):
        if int(b.indices[0]) == 2:
            raise OSError("disk full")

    w = BackgroundWriter(write)
    with pytest.raises(OSError, match="disk full"):
        for k in range(50):
            w.submit(batch(k))
            time.sleep(0.01)
        w.close()
    w.abort()
