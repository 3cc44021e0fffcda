"""Prefetcher: batches in order, the source's error handed over, stop ends the thread;
decode_in_idle_time: the same frames as in-line decoding, and a stalled idle thread taken over."""
from __future__ import annotations

import itertools
import os
import threading
import time

import pytest
import torch

from vdp.engine.prefetch import Prefetcher, decode_in_idle_time
from vdp.errors import DecodeError, JobTimeoutError
from vdp.io import iter_batches
from tests.conftest import MEDIA
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


# decode_in_idle_time: real decoding of a real clip on an idle-priority thread, and the
# consumer taking over when that thread gets nowhere.

BEAR = MEDIA / "androidx__bear-vp9-odd-dimensions.webm"


def decoder(stop: int, log: list | None = None, stall_idle_at: int | None = None):
    """open_from(first) for frames [first, stop) of BEAR; logs (first, thread policy); the
    idle thread's source hangs before frame `stall_idle_at` (a thread that gets no CPU)."""
    def open_from(first: int):
        if log is not None:
            log.append((first, os.sched_getscheduler(0) if hasattr(os, "sched_getscheduler") else None))
        if first >= stop:
            return iter(())
        batches = iter_batches(BEAR, batch_frames=4, start_frame=first, stop_frame=stop)
        if stall_idle_at is None or threading.current_thread().name != "vdp-decode-idle":
            return batches

        def stalling():
            for b in batches:
                if int(b.indices[0]) >= stall_idle_at:
                    threading.Event().wait(30)
                yield b
        return stalling()
    return open_from


def frames_of(batches) -> tuple[list[int], torch.Tensor]:
    batches = list(batches)
    return [int(i) for b in batches for i in b.indices], torch.cat([b.frames for b in batches])


def test_idle_decoding_gives_the_frames_of_inline_decoding():
    log: list = []
    idx, frames = frames_of(decode_in_idle_time(decoder(21, log), 2))
    ref_idx, ref = frames_of(iter_batches(BEAR, batch_frames=4, start_frame=2, stop_frame=21))
    assert idx == ref_idx == list(range(2, 21))
    assert torch.equal(frames, ref)
    assert [first for first, _ in log] == [2]  # one decoder, never taken over
    if hasattr(os, "SCHED_IDLE"):
        assert log[0][1] == os.SCHED_IDLE
        assert os.sched_getscheduler(0) != os.SCHED_IDLE  # the consumer's thread is untouched


def test_consumer_takes_over_from_a_stalled_idle_thread():
    log: list = []
    t0 = time.monotonic()
    idx, frames = frames_of(decode_in_idle_time(decoder(21, log, stall_idle_at=8), 0, patience_s=0.3))
    assert time.monotonic() - t0 < 10  # not the 30 s the idle thread hangs
    ref_idx, ref = frames_of(iter_batches(BEAR, batch_frames=4, stop_frame=21))
    assert idx == ref_idx == list(range(21))  # every frame once, in order
    assert torch.equal(frames, ref)
    assert [first for first, _ in log] == [0, 8]  # the consumer went on from the first frame it lacked
    if hasattr(os, "SCHED_IDLE"):
        assert log[1][1] != os.SCHED_IDLE


def test_idle_decoding_raises_the_sources_error_but_takes_over_after_a_timeout():
    def broken(first: int):
        yield from synthetic_batches(n=8)
        raise DecodeError("frame 8 could not be decoded")

    with pytest.raises(DecodeError, match="frame 8"):
        list(decode_in_idle_time(broken, 0))

    calls: list[int] = []

    def times_out_when_idle(first: int):
        calls.append(first)
        yield from (b for b in synthetic_batches() if int(b.indices[0]) >= first)
        if threading.current_thread().name == "vdp-decode-idle":
            raise JobTimeoutError("decoding frames 37-40 overran")

    idx = [int(i) for b in decode_in_idle_time(times_out_when_idle, 0) for i in b.indices]
    assert idx == list(range(37)) and calls == [0, 37]


def test_leaving_early_stops_the_idle_thread():
    before = set(threading.enumerate())
    it = decode_in_idle_time(decoder(30), 0, depth=1)
    next(it)
    (idle,) = [t for t in threading.enumerate() if t.name == "vdp-decode-idle" and t not in before]
    it.close()
    idle.join(timeout=5)
    assert not idle.is_alive()


def test_idle_decoding_starts_at_once_and_stops_when_dropped_unstarted():
    log: list = []
    before = set(threading.enumerate())
    it = decode_in_idle_time(decoder(30, log), 0, depth=1)
    (idle,) = [t for t in threading.enumerate() if t.name == "vdp-decode-idle" and t not in before]
    deadline = time.monotonic() + 10
    while not log and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [first for first, _ in log] == [0]  # opened without a next()
    del it  # never iterated: e.g. the models failed to load
    idle.join(timeout=5)
    assert not idle.is_alive()
