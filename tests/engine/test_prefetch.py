"""Prefetcher: batches in order, the source's error handed over, stop ends the thread."""
from __future__ import annotations

import itertools
import threading

import pytest

from vdp.engine.prefetch import Prefetcher
from vdp.errors import DecodeError, JobTimeoutError
from tests.engine.test_runners import synthetic_batches


def drain(p: Prefetcher) -> list[int]:
    got = []
    while not p.exhausted:
        p.wait(1.0)
        b = p.poll()
        if b is not None:
            got.extend(b.indices.tolist())
    return got


def test_batches_come_in_order_and_end():
    assert drain(Prefetcher(lambda: synthetic_batches(), depth=1)) == list(range(37))


def test_source_error_is_raised_to_the_consumer():
    def broken():
        yield from synthetic_batches(n=8)
        raise DecodeError("frame 8 could not be decoded")

    p = Prefetcher(broken)
    with pytest.raises(DecodeError, match="frame 8"):
        drain(p)
    assert p.exhausted


def test_stop_ends_the_decoding_thread():
    p = Prefetcher(lambda: synthetic_batches(n=400, batch=1), depth=2)
    p.wait(1.0)
    p.stop()
    p._thread.join(timeout=2)
    assert not p._thread.is_alive()


def test_batches_iterates_in_order_and_stops_the_thread_when_left_early():
    p = Prefetcher(lambda: synthetic_batches(n=400, batch=1), depth=2)
    it = p.batches(timeout_s=5)
    assert [int(next(it).indices[0]) for _ in range(3)] == [0, 1, 2]
    it.close()  # the consumer leaves early
    p._thread.join(timeout=2)
    assert not p._thread.is_alive()
    assert [int(i) for b in Prefetcher(lambda: synthetic_batches()).batches(5) for i in b.indices] == list(range(37))


def test_batches_raises_the_source_error_and_times_out_on_a_stalled_source():
    def broken():
        yield from synthetic_batches(n=4)
        raise DecodeError("frame 4 could not be decoded")

    with pytest.raises(DecodeError, match="frame 4"):
        list(Prefetcher(broken).batches(5))

    def stalled():
        yield from synthetic_batches(n=2, batch=1)
        threading.Event().wait(30)  # a hung decoder
        yield from synthetic_batches(n=1, batch=1)

    it = Prefetcher(stalled).batches(timeout_s=0.5)
    assert len(list(itertools.islice(it, 2))) == 2
    with pytest.raises(JobTimeoutError, match="no frames for 0.5 s"):
        next(it)
