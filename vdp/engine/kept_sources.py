"""Opened videos kept between chunks of the same file, per process.

Opening a video reads every packet header of it (TorchCodec's exact seek mode) and probes its
colour, rotation and audio: work that grows with the file's length (~0.27 s of CPU for a
10-minute 720p file here), so opening it per chunk is quadratic in the video's length. A stage
replica decoding several chunks of one video (`vdp.engine.worker_decode`) and a driver decoding
chunks itself (local runs, inputs the replicas cannot read: `kept_batches`) keep the opened
source in `SOURCES` for the next chunk; a source unused for a minute is let go, closing its file.
"""
from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from typing import Any, Iterator

from vdp.types import FrameBatch


class SourceCache:
    """Opened `vdp.io.VideoSource`s of this process, kept between chunk runs of the same file.

    A run takes its source out (one run reads a source at a time) and gives it back only after
    decoding all its frames; a source whose run failed or stopped early is not kept. Keyed by
    the path, the size the caller expects, its size and modification time here and how it was
    opened (device, HDR mode, stream, threads), so a file changed in between is opened again.
    A kept source holds its file open, so one unused for `keep_s` seconds is let go (a finished
    job's deleted upload frees its disk space soon after; a job's chunks follow one another
    within seconds).

    Args:
        size: Sources kept at most (least recently used go first).
        keep_s: Longest a source is kept unused.
    """

    def __init__(self, size: int = 2, keep_s: float = 60.0) -> None:
        self.size = size
        self.keep_s = keep_s
        self._kept: OrderedDict[tuple, tuple[Any, float]] = OrderedDict()  # key -> (source, given at)
        self._lock = threading.Lock()
        self._sweeper: threading.Timer | None = None

    @staticmethod
    def key(path: str, size: int | None = None, **how: Any) -> tuple | None:
        """What identifies a source of `path` (expected to have `size` bytes) opened with `how`
        (None: the file cannot be stat'ed, never kept)."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (path, size, st.st_size, st.st_mtime_ns, *sorted(how.items()))

    def take(self, key: tuple | None) -> Any:
        """The kept source for `key`, removed from the cache (None if there is none)."""
        with self._lock:
            self._drop_expired()
            return None if key is None else self._kept.pop(key, (None, 0.0))[0]

    def __len__(self) -> int:
        with self._lock:
            self._drop_expired()
            return len(self._kept)

    def give(self, key: tuple | None, source: Any) -> None:
        """Keep `source` for the next run of `key`."""
        if key is None:
            return
        with self._lock:
            self._kept[key] = (source, time.monotonic())
            self._kept.move_to_end(key)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
            if self._sweeper is None:
                self._sweeper = threading.Timer(self.keep_s, self._sweep)
                self._sweeper.daemon = True
                self._sweeper.start()

    def _sweep(self) -> None:
        with self._lock:
            self._sweeper = None
            self._drop_expired()
            if self._kept:  # look again when the oldest left expires
                oldest = min(at for _, at in self._kept.values())
                self._sweeper = threading.Timer(max(0.01, oldest + self.keep_s - time.monotonic()), self._sweep)
                self._sweeper.daemon = True
                self._sweeper.start()

    def _drop_expired(self) -> None:
        now = time.monotonic()
        for key in [k for k, (_, at) in self._kept.items() if now - at >= self.keep_s]:
            del self._kept[key]


#: This process's kept sources (`SourceCache`).
SOURCES = SourceCache()


class KeptSource:
    """The source of `path` for one chunk run: the one kept in `SOURCES` for the same file and
    settings (`kept` True), else newly opened (before this returns, so a broken file raises
    here). `batches` gives it back to `SOURCES` after the range's last frame.
    """

    def __init__(self, path: str, *, timeout_s: float, size: int | None = None, device: str = "cpu",
                 num_threads: int = 1, hdr: str = "tonemap", stream_index: int | None = None) -> None:
        from vdp.io.decode import VideoSource

        self.key = SourceCache.key(path, size, device=device, hdr=hdr, stream_index=stream_index,
                                   threads=num_threads)
        self.source = SOURCES.take(self.key)
        self.kept = self.source is not None
        if self.source is None:
            self.source = VideoSource(path, device=device, num_threads=num_threads, timeout_s=timeout_s,
                                      hdr=hdr, stream_index=stream_index)
        self.source.timeout_s = timeout_s  # this job's deadline per decode call

    def batches(self, *, batch_frames: int, start: int, stop: int) -> Iterator[FrameBatch]:
        """Frames ``[start, stop)`` (see `vdp.io.VideoSource.batches`)."""
        yield from self.source.batches(batch_frames=batch_frames, start_frame=start, stop_frame=stop)
        SOURCES.give(self.key, self.source)  # only after every frame: a failed or stopped run keeps nothing


def kept_batches(path: str, *, start: int, stop: int, batch_frames: int, timeout_s: float,
                 num_threads: int = 1, hdr: str = "tonemap",
                 stream_index: int | None = None) -> Iterator[FrameBatch]:
    """`vdp.io.iter_batches` of frames ``[start, stop)`` on the CPU through a `KeptSource`: a
    source kept from an earlier chunk of the same file is decoded on without a new open and
    scan, and this one is kept after its last frame. A broken file raises here."""
    return KeptSource(path, timeout_s=timeout_s, num_threads=num_threads, hdr=hdr,
                      stream_index=stream_index).batches(batch_frames=batch_frames, start=start, stop=stop)
