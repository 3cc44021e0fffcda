"""Decode next to the model: a chunk's frames are decoded by the actor that runs its first stage.

On the Ray path the driver no longer decodes a chunk and ships full-resolution frames through
the object store. It sends the first stage's actor a `DecodeRequest` with the stream's ``open``
call, then one small `DecodeTicket` per batch (a frame range); the actor decodes the chunk a
batch or two ahead in a thread of its own (`WorkerDecoder`; at idle priority in a CPU actor
that takes turns with the node's cores) and hands each ticket's frames to its stage. What
crosses processes per batch is a ticket in and the stage chain's result out.

Storage contract: the input is read at the same path on every node (shared storage). Before a
replica decodes, the driver asks it whether it can read that path (`check_readable`: the file
opens and has the driver's size); a replica that cannot gets frames shipped from the driver as
before, and the job report says so in a warning and per chunk.

Opening a video reads every packet header of it (TorchCodec's exact seek mode) and probes its
colour, rotation and audio: work that grows with the file's length. A replica running several
chunks of one video keeps the opened source between them (`vdp.engine.kept_sources`), so a
long video is opened once per replica, not once per chunk.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch

from vdp.engine.kept_sources import KeptSource
from vdp.engine.prefetch import Prefetcher, decode_in_idle_time, timed_batches
from vdp.errors import VdpError
from vdp.idle import IDLE_PRIORITY_AVAILABLE
from vdp.types import FrameBatch


class TicketMismatchError(VdpError):
    """A ticket asked for frames the worker's decoder is not at (a driver/actor disagreement)."""


@dataclass(frozen=True)
class DecodeRequest:
    """What a worker needs to decode one chunk run: the file, its size as the driver sees it,
    the frame range and batching, the decode deadline, the device asked for, what to do
    with HDR (``"tonemap"`` or ``"keep"``, see `vdp.io.VideoSource`) and how many of its last
    frames to keep for a next chunk on this actor (`keep_tail`, `vdp.engine.kept_sources`)."""

    path: str
    size: int
    start: int
    stop: int
    batch_frames: int
    timeout_s: float
    device: str = "cpu"
    hdr: str = "tonemap"
    stream_index: int | None = None
    keep_tail: int = 0


@dataclass(frozen=True)
class DecodeTicket:
    """One batch, by frame range, to be decoded by the worker (frames ``[first, stop)``)."""

    first: int
    stop: int
    starts_segment: bool = False

    def __len__(self) -> int:
        return self.stop - self.first


def tickets(request: DecodeRequest) -> list[DecodeTicket]:
    """The batches of `request` as `vdp.io.VideoSource.batches` cuts them."""
    step = request.batch_frames
    return [DecodeTicket(f, min(f + step, request.stop)) for f in range(request.start, request.stop, step)]


def frameless(batch: FrameBatch) -> FrameBatch:
    """`batch` without its RGB frames (``[T,3,0,0]``): what a job whose outputs read no ``rgb``
    needs of a result, so full-resolution frames do not travel back to the driver."""
    empty = torch.empty((len(batch), 3, 0, 0), dtype=torch.uint8)
    return FrameBatch(empty, batch.indices, batch.pts_seconds, batch.layers, batch.starts_segment)


def check_readable(path: str, size: int) -> str:
    """Why this process cannot read the driver's input at `path` ("" when it can)."""
    try:
        st = os.stat(path)
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    if st.st_size != size:
        return f"{path} has {st.st_size} bytes here, {size} on the driver (not the same file)"
    return ""


def decode_device(actor_device: torch.device) -> str:
    """NVDEC (TorchCodec's CUDA device) where the actor computes on CUDA, else the CPU."""
    return "cuda" if actor_device.type == "cuda" and torch.cuda.is_available() else "cpu"


class WorkerDecoder:
    """Decodes one chunk run inside the actor, a batch or two ahead of the stage.

    Frames decoded on CUDA are moved to the CPU before the stage sees them (the stage contract's
    frames are CPU tensors); decode falling back to the CPU is recorded in `where`.

    With `idle` (a CPU actor whose model computes on the node's cores) the decoding thread runs
    at idle priority, as the driver's does on the local path (`decode_in_idle_time`): at normal
    priority it preempts one of the model's threads while the others wait for it at a barrier.
    When other work keeps every core busy for seconds, the stage's own thread decodes the rest.
    """

    def __init__(self, request: DecodeRequest, node_id: str, depth: int = 2, idle: bool = False) -> None:
        self.request = request
        self.source_status: Any = None
        self._next = request.start
        self._seconds: dict[int, float] = {}  # first frame of a decoded batch -> seconds decoding it
        self.where = {"on": "worker", "node_id": node_id, "pid": os.getpid(),
                      "device": request.device, "requested_device": request.device,
                      "priority": "idle" if idle and IDLE_PRIORITY_AVAILABLE else "normal"}
        if idle and IDLE_PRIORITY_AVAILABLE:  # both start decoding at once
            self._prefetch = None
            self._batches = decode_in_idle_time(self._open, request.start, depth=depth)
        else:
            self._prefetch = Prefetcher(lambda: self._open(request.start), depth=depth, name="vdp-worker-decode")

    def _open(self, first: int) -> Iterator[FrameBatch]:
        """The run's batches from frame `first` on (a taking-over decode opens its own source)."""
        r = self.request
        if first >= r.stop:
            return
        kept = KeptSource(r.path, size=r.size, device=r.device, timeout_s=r.timeout_s, hdr=r.hdr,
                          stream_index=r.stream_index)
        self.where["source"] = "kept" if kept.kept else "opened"  # kept: no new open and scan
        self.where["replayed_frames"] = kept.replayed(first, r.stop)  # not decoded again
        self.source_status = kept.source.status
        batches = (b if b.frames.device.type == "cpu" else FrameBatch(b.frames.cpu(), b.indices, b.pts_seconds)
                   for b in kept.batches(batch_frames=r.batch_frames, start=first, stop=r.stop,
                                         keep_tail=r.keep_tail))
        yield from timed_batches(batches, self._seconds)

    def take(self, ticket: DecodeTicket) -> tuple[FrameBatch, float]:
        """The frames of `ticket` and the seconds spent decoding them.

        Raises:
            TicketMismatchError: The ticket does not continue where the last one ended.
            DecodeError, JobTimeoutError: Decoding failed or stalled.
        """
        if ticket.first != self._next:
            raise TicketMismatchError(f"worker decoder of {self.request.path} is at frame {self._next}, "
                                      f"ticket asks for {ticket.first}-{ticket.stop - 1}")
        if self._prefetch is not None:
            batch = self._prefetch.get(self.request.timeout_s)
        else:
            batch = next(self._batches, None)
        if batch is None or len(batch) != len(ticket):
            got = 0 if batch is None else len(batch)
            raise TicketMismatchError(f"decoded {got} frames for ticket {ticket.first}-{ticket.stop - 1}")
        self._next = ticket.stop
        status = self.source_status
        if status is not None and status.fallback:
            self.where.update(device=status.device, fallback=status.reason)
        if ticket.starts_segment:
            batch.starts_segment = True
        return batch, self._seconds.pop(ticket.first, 0.0)

    def stop(self) -> None:
        """Stop decoding ahead (an early end: the run failed or was cancelled)."""
        if self._prefetch is not None:
            self._prefetch.stop()
        else:
            self._batches.close()
