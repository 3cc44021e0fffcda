"""Prefetcher: decode a chunk's batches in a background thread, a few batches ahead.

The driver runs several chunks at once; decoding each in its own thread keeps the driver's
loop free to submit, collect and write (TorchCodec releases the GIL while it decodes).
`decode_in_idle_time` does the same beside models computing on this process's cores, at idle
priority, taking over itself when that thread gets no CPU time.
"""
from __future__ import annotations

import queue
import threading
import time
import weakref
from typing import Callable, Iterator

from vdp.errors import JobTimeoutError
from vdp.idle import set_idle_priority
from vdp.types import FrameBatch

_END = object()


class Prefetcher:
    """Runs `make_iter()` in a daemon thread, holding at most `depth` batches.

    Args:
        make_iter: Opens the source (called in the thread, so opening does not block either).
        depth: Batches decoded ahead.
        name: Thread name.
        idle: Run the thread (and the threads it starts) at idle priority (`vdp.idle`).
    """

    def __init__(self, make_iter: Callable[[], Iterator[FrameBatch]], *, depth: int = 2,
                 name: str = "vdp-decode", idle: bool = False) -> None:
        self._q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._idle = idle
        self._thread = threading.Thread(target=self._run, args=(make_iter,), name=name, daemon=True)
        self._thread.start()
        self._next: object = None  # an item taken by `wait`, handed out by the next `poll`
        self.exhausted = False
        #: Seconds the thread spent decoding the batch `poll` handed out last.
        self.last_seconds = 0.0

    def poll(self) -> FrameBatch | None:
        """The next batch if one is ready, else None; `exhausted` turns True at the end.

        Raises:
            Exception: Whatever the source raised (e.g. `DecodeError`), once reached.
        """
        if self.exhausted:
            return None
        item, self._next = self._next, None
        if item is None:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                return None
        if item is _END:
            self.exhausted = True
            return None
        if isinstance(item, BaseException):
            self.exhausted = True
            raise item
        batch, self.last_seconds = item
        return batch

    @property
    def ready(self) -> bool:
        """Whether `poll` has something to hand out (a batch, an error or the end)."""
        return self.exhausted or self._next is not None or not self._q.empty()

    def wait(self, timeout_s: float) -> None:
        """Block until a batch (or the end) is ready, or `timeout_s` passes."""
        if self.exhausted or self._next is not None:
            return
        try:
            self._next = self._q.get(timeout=timeout_s)
        except queue.Empty:
            pass

    def get(self, timeout_s: float) -> FrameBatch | None:
        """The next batch, waiting for it (None at the end).

        Raises:
            JobTimeoutError: No batch arrived for `timeout_s`.
            Exception: Whatever the source raised.
        """
        while True:
            batch = self.poll()
            if batch is not None or self.exhausted:
                return batch
            self.wait(timeout_s)
            if self._next is None and not self.exhausted:
                raise JobTimeoutError(f"decoding produced no frames for {timeout_s:g} s")

    def batches(self, timeout_s: float) -> Iterator[FrameBatch]:
        """Blocking iteration over the batches, for a single consumer; stops the thread when
        the consumer leaves early.

        Raises:
            JobTimeoutError: No batch arrived for `timeout_s`.
            Exception: Whatever the source raised.
        """
        try:
            while True:
                batch = self.poll()
                if batch is not None:
                    yield batch
                elif self.exhausted:
                    return
                else:
                    self.wait(timeout_s)
                    if self._next is None and not self.exhausted:
                        raise JobTimeoutError(f"decoding produced no frames for {timeout_s:g} s")
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop decoding (the thread exits at its next batch); pending batches are dropped."""
        self._stop.set()
        self._next = None
        while True:
            try:
                self._q.get_nowait()
            except queue.Empty:
                break

    def _run(self, make_iter: Callable[[], Iterator[FrameBatch]]) -> None:
        if self._idle:
            set_idle_priority()
        try:
            batches = iter(make_iter())
            while True:
                t0 = time.perf_counter()
                batch = next(batches, _END)
                if batch is _END:
                    break
                if not self._put((batch, time.perf_counter() - t0)):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the consumer
            self._put(exc)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False


def decode_in_idle_time(open_from: Callable[[int], Iterator[FrameBatch]], start: int, *,
                        depth: int = 1, patience_s: float = 2.0) -> Iterator[FrameBatch]:
    """Batches of `open_from(start)`, decoded ahead on an idle-priority thread.

    For models computing on this process's cores: the thread (and FFmpeg's threads, which it
    starts) decodes only while a core would otherwise be idle, so decoding costs the models
    nothing. Whenever the consumer has waited `patience_s` for a batch (other processes keep
    every core busy, or a batch is that slow) or the thread's decoding timed out, the consumer
    stops the thread and decodes the rest itself at normal priority, from the first frame it
    has not received: never slower than decoding in line, at most a batch decoded twice.

    Args:
        open_from: Opens the source at a frame index: its batches in frame order up to the
            chunk's end (nothing when the index is past it).
        start: The first frame.
        depth: Batches decoded ahead.
        patience_s: Longest wait for the idle thread's next batch.

    Returns:
        An iterator of the batches, each frame once, in order. Decoding starts at once (e.g.
        while the models load), not at the first ``next()``.

    Raises:
        Exception: Whatever the source raised (e.g. `DecodeError`).
    """
    prefetcher = Prefetcher(lambda: open_from(start), depth=depth, name="vdp-decode-idle", idle=True)
    batches = _take_over_when_stalled(prefetcher, open_from, start, patience_s)
    weakref.finalize(batches, prefetcher.stop)  # also when dropped unstarted (e.g. setup failed)
    return batches


def _take_over_when_stalled(prefetcher: Prefetcher, open_from: Callable[[int], Iterator[FrameBatch]],
                            start: int, patience_s: float) -> Iterator[FrameBatch]:
    next_frame = start
    try:
        while True:
            try:
                batch = prefetcher.poll()
            except JobTimeoutError:  # starved for a whole deadline, or hung: try it in line
                break
            if batch is not None:
                if len(batch):
                    next_frame = int(batch.indices[-1]) + 1
                yield batch
            elif prefetcher.exhausted:
                return
            else:
                prefetcher.wait(patience_s)
                if not prefetcher.ready:
                    break
    finally:
        prefetcher.stop()
    yield from open_from(next_frame)


def timed_batches(batches: Iterator[FrameBatch], seconds: dict[int, float]) -> Iterator[FrameBatch]:
    """`batches`, noting in `seconds` (by each batch's first frame) how long it took to decode,
    in whichever thread decodes it: decoded ahead, the consumer's wait for a batch says
    nothing of decoding's own speed."""
    while True:
        t0 = time.perf_counter()
        batch = next(batches, None)
        if batch is None:
            return
        if len(batch):
            seconds[int(batch.indices[0])] = time.perf_counter() - t0
        yield batch
