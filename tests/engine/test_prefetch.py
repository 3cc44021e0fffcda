"""Prefetcher: batches in order, the source's error handed over, stop ends the thread."""
from __future__ import annotations


import pytest

from vdp.engine.prefetch import Prefetcher
from vdp.errors import DecodeError
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
