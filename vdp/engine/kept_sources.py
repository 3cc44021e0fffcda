"""Opened videos kept between chunks of the same file, per process.

Opening a video reads every packet header of it (TorchCodec's exact seek mode) and probes its
colour, rotation and audio: work that grows with the file's length (~0.27 s of CPU for a
10-minute 720p file here), so opening it per chunk is quadratic in the video's length. A stage
replica decoding several chunks of one video (`vdp.engine.worker_decode`) and a driver decoding
chunks itself (local runs, inputs the replicas cannot read: `kept_batches`) keep the opened
source in `SOURCES` for the next chunk; a source unused for a minute is let go, closing its file.

A run can also keep its last frames with the source (`keep_tail`: the next chunk's overlap).
The next chunk of the same process then starts among them: it takes those frames as
they are and its decoder goes on from where it stands. Without them it would decode them again
after seeking back to the keyframe before them, which in a file with few keyframes (x264's
default is one every 250 frames) means decoding from near the file's start: with one keyframe
in 192 frames and chunks of 96, 240 frames more than the video has.
"""
from __future__ import annotations

import itertools
import os
import threading
import time
from collections import OrderedDict
from typing import Any, Iterator

from vdp.types import FrameBatch

TAIL_BYTES = 512 << 20  # the most a kept source keeps of its last frames for the next chunk


def tail_frames(overlap: int, frame_bytes: int) -> int:
    """Frames of `frame_bytes` each a run keeps for a next chunk's `overlap`: all of them, or
    none when they would be over `TAIL_BYTES`."""
    return overlap if overlap * frame_bytes <= TAIL_BYTES else 0


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
        # key -> (source, its last decoded batches or None, when given back)
        self._kept: OrderedDict[tuple, tuple[Any, list[FrameBatch] | None, float]] = OrderedDict()
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

    def take(self, key: tuple | None) -> tuple[Any, list[FrameBatch] | None]:
        """The kept source for `key` and the last frames it decoded (if kept), removed from the
        cache ((None, None) if there is none)."""
        with self._lock:
            self._drop_expired()
            source, tail, _ = (None, None, 0.0) if key is None else self._kept.pop(key, (None, None, 0.0))
            return source, tail

    def __len__(self) -> int:
        with self._lock:
            self._drop_expired()
            return len(self._kept)

    def give(self, key: tuple | None, source: Any, tail: list[FrameBatch] | None = None) -> None:
        """Keep `source` for the next run of `key`, with `tail`: consecutive batches of its last
        decoded frames (the decoder stands just after them)."""
        if key is None:
            return
        with self._lock:
            self._kept[key] = (source, tail, time.monotonic())
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
                oldest = min(at for _, _, at in self._kept.values())
                self._sweeper = threading.Timer(max(0.01, oldest + self.keep_s - time.monotonic()), self._sweep)
                self._sweeper.daemon = True
                self._sweeper.start()

    def _drop_expired(self) -> None:
        now = time.monotonic()
        for key in [k for k, (_, _, at) in self._kept.items() if now - at >= self.keep_s]:
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
        self.source, self._tail = SOURCES.take(self.key)
        self.kept = self.source is not None
        if self.source is None:
            self.source = VideoSource(path, device=device, num_threads=num_threads, timeout_s=timeout_s,
                                      hdr=hdr, stream_index=stream_index)
        self.source.timeout_s = timeout_s  # this job's deadline per decode call

    def batches(self, *, batch_frames: int, start: int, stop: int, keep_tail: int = 0) -> Iterator[FrameBatch]:
        """Frames ``[start, stop)`` (see `vdp.io.VideoSource.batches`), the first ones from the
        kept tail when `start` falls in it (`replayed`). The last `keep_tail` frames are kept
        with the source for the next run (CPU frames up to `TAIL_BYTES`), not copied: stages and
        writers do not change the frames they are given."""
        replayed = self.replayed(start, stop)
        tail, self._tail = self._tail, None
        if replayed:
            resume = start + replayed
            fill = min(-replayed % batch_frames, stop - resume)  # realigns the decoder's batches
            pieces = itertools.chain(
                (b.slice(max(0, start - int(b.indices[0])), resume - int(b.indices[0]))
                 for b in tail if int(b.indices[-1]) >= start and int(b.indices[0]) < resume),
                self.source.batches(batch_frames=fill, start_frame=resume, stop_frame=resume + fill) if fill else (),
                self.source.batches(batch_frames=batch_frames, start_frame=resume + fill, stop_frame=stop)
                if resume + fill < stop else ())
            batches = rebatch(pieces, batch_frames)
        else:
            batches = self.source.batches(batch_frames=batch_frames, start_frame=start, stop_frame=stop)
        # nothing is kept by a run that ends the video (no chunk follows it) or that only replays
        # frames (the decoder is not where they end)
        info = self.source.info
        ends = stop >= info.num_frames or start + replayed >= stop
        keep_from, kept = (stop if ends else stop - tail_frames(max(0, keep_tail), info.width * info.height * 3)), []
        for batch in batches:
            first = int(batch.indices[0])
            if first + len(batch) > keep_from and batch.frames.device.type == "cpu":
                kept.append(batch.slice(max(0, keep_from - first)))
            yield batch
        SOURCES.give(self.key, self.source, kept or None)  # only after every frame: a failed run keeps nothing

    def replayed(self, start: int, stop: int) -> int:
        """How many frames from `start` on a run ``[start, stop)`` takes from the kept tail
        (0: it decodes them all)."""
        if not self._tail:
            return 0
        first, end = int(self._tail[0].indices[0]), int(self._tail[-1].indices[-1]) + 1
        return max(0, min(end, stop) - start) if first <= start else 0


def rebatch(pieces: Iterator[FrameBatch], size: int) -> Iterator[FrameBatch]:
    """Consecutive `pieces` as batches of `size` frames (the last may be shorter); a piece that
    holds a whole batch is sliced, only batches that span pieces are copied together."""
    held: list[FrameBatch] = []
    have = 0
    for piece in pieces:
        pos = 0
        while pos < len(piece):
            take = min(size - have, len(piece) - pos)
            part = piece if take == len(piece) else piece.slice(pos, pos + take)
            pos += take
            if take == size:
                yield part
                continue
            held.append(part)
            have += take
            if have == size:
                yield FrameBatch.concat(held)
                held, have = [], 0
    if held:
        yield held[0] if len(held) == 1 else FrameBatch.concat(held)


def kept_batches(path: str, *, start: int, stop: int, batch_frames: int, timeout_s: float,
                 num_threads: int = 1, hdr: str = "tonemap", stream_index: int | None = None,
                 keep_tail: int = 0) -> Iterator[FrameBatch]:
    """`vdp.io.iter_batches` of frames ``[start, stop)`` on the CPU through a `KeptSource`: a
    source kept from an earlier chunk of the same file is decoded on without a new open and
    scan (and from its kept tail), and this one is kept after its last frame with its last
    `keep_tail` frames. A broken file raises here."""
    return KeptSource(path, timeout_s=timeout_s, num_threads=num_threads, hdr=hdr,
                      stream_index=stream_index).batches(batch_frames=batch_frames, start=start, stop=stop,
                                                         keep_tail=keep_tail)
