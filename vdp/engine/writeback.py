"""Writing outputs on a background thread, so encoding overlaps model compute.

Encoders (zlib, libx264, libvpx) release the GIL, so while the stages compute the next batch
the previous one is being compressed. At most `max_pending` batches wait, which keeps memory
bounded and turns a slow writer into backpressure on the pipeline.
"""
from __future__ import annotations

import queue
import threading
from contextlib import nullcontext
from typing import Callable

from vdp.errors import JobTimeoutError
from vdp.idle import set_idle_priority
from vdp.types import FrameBatch

_STOP = object()


class BackgroundWriter:
    """Calls `write(batch)` on one thread, in submission order.

    Args:
        write: Writes one batch to every output.
        max_pending: Batches that may wait for the thread before `submit` blocks.
        timeout_s: Longest `submit` waits for room, and `close` for the thread.
    """

    def __init__(self, write: Callable[[FrameBatch], None], *, max_pending: int = 2,
                 timeout_s: float = 600.0) -> None:
        self._write = write
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self._error: BaseException | None = None
        self._timeout_s = timeout_s
        self._idle = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="vdp-writer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        from vdp.io import encode_in_idle_time  # TorchCodec's import is the job's, not this module's

        lowered = False
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._idle.is_set() and not lowered:
                lowered = set_idle_priority()
            if self._error is None:
                try:
                    with encode_in_idle_time() if lowered else nullcontext():
                        self._write(item)
                except BaseException as exc:  # re-raised in the driver's thread
                    self._error = exc

    def lower_priority(self) -> None:
        """From the next batch on, write at idle priority (`vdp.idle`; PNG frames encode on
        idle-priority threads too): for models computing on this node's cores."""
        self._idle.set()

    @property
    def idle(self) -> bool:
        """Whether `lower_priority` was asked for."""
        return self._idle.is_set()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, batch: FrameBatch) -> None:
        """Queue a batch (blocks while `max_pending` batches wait); re-raises a write error."""
        self._raise_error()
        try:
            self._queue.put(batch, timeout=self._timeout_s)
        except queue.Full:
            raise JobTimeoutError(f"writing outputs stalled for {self._timeout_s:.0f} s") from None

    def close(self) -> None:
        """Wait until every queued batch is written; re-raises a write error."""
        self._stop()
        self._raise_error()

    def abort(self) -> None:
        """Stop after the batch being written (queued ones are dropped)."""
        self._error = self._error or RuntimeError("aborted")
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._stop()

    def _stop(self) -> None:
        if self._thread.is_alive():
            try:
                self._queue.put(_STOP, timeout=self._timeout_s)
            except queue.Full:
                raise JobTimeoutError(f"writing outputs stalled for {self._timeout_s:.0f} s") from None
            self._thread.join(self._timeout_s)
            if self._thread.is_alive():
                raise JobTimeoutError(f"writing outputs did not finish within {self._timeout_s:.0f} s")
