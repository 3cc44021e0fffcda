"""Prefetcher: decode a chunk's batches in a background thread, a few batches ahead.

The driver runs several chunks at once; decoding each in its own thread keeps the driver's
loop free to submit, collect and write (TorchCodec releases the GIL while it decodes).
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator

from vdp.errors import JobTimeoutError
from vdp.types import FrameBatch

_END = object()


class Prefetcher:
    """Runs `make_iter()` in a daemon thread, holding at most `depth` batches.

    Args:
        make_iter: Opens the source (called in the thread, so opening does not block either).
        depth: Batches decoded ahead.
        name: Thread name.
    """

    def __init__(self, make_iter: Callable[[], Iterator[FrameBatch]], *, depth: int = 2,
                 name: str = "vdp-decode") -> None:
        self._q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(make_iter,), name=name, daemon=True)
        self._thread.start()
        self._next: object = None  # an item taken by `wait`, handed out by the next `poll`
        self.exhausted = False

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
        return item

    def wait(self, timeout_s: float) -> None:
        """Block until a batch (or the end) is ready, or `timeout_s` passes."""
        if self.exhausted or self._next is not None:
            return
        try:
            self._next = self._q.get(timeout=timeout_s)
        except queue.Empty:
            pass

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
        try:
            for batch in make_iter():
                if not self._put(batch):
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
