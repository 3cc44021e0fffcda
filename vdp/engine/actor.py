"""StageActor: one stage (one loaded model) inside a Ray actor, serving many streams.

The actor is restarted by Ray when its process dies (``max_restarts=-1``), reloading its model;
calls are never retried blindly (``max_task_retries=0``): the per-stream state died with the
process, so the driver re-runs the lost chunk from its start instead. A call for a stream the
actor does not hold (it was opened before a restart) raises `StreamLostError`.
"""
from __future__ import annotations

import os
import time
from contextlib import nullcontext
from typing import Any

import ray
import torch

from vdp.engine.cluster import node_resource
from vdp.engine.fused import FusedStage
from vdp.engine.cores import INTEROP_THREADS, CpuTurn, actor_threads, node_cores
from vdp.engine.lifecycle import idle_info, watch_idle
from vdp.engine.metrics import record_batch, record_fallbacks
from vdp.engine.plan import StagePlan
from vdp.engine.step import flush_step, process_step, step_meta
from vdp.engine.worker_decode import (DecodeRequest, DecodeTicket, WorkerDecoder, check_readable, decode_device,
                                      frameless)
from vdp.errors import VdpError
from vdp.host_memory import return_large_buffers
from vdp.stages.base import StageReport
from vdp.types import FrameBatch, VideoInfo


class StreamLostError(VdpError):
    """The actor holds no state for the stream (its process was restarted since it opened)."""


@ray.remote(max_restarts=-1, max_task_retries=0)
class StageActor:
    """Holds one set-up stage; per-stream state lives in a slot keyed by stream id.

    Calls from one driver run in submission order, so a stream's batches are processed in
    frame order and its state is threaded through them.
    """

    def __init__(self, plan: StagePlan, threads: int | None = None, idle_s: float | None = None,
                 cpu_turns: bool = False) -> None:
        # Ray starts workers with OMP_NUM_THREADS=1 (actors here reserve no CPUs); without an
        # explicit count, use the node's cores as torch would outside Ray.
        return_large_buffers()
        gpu_ids = ray.get_gpu_ids()
        use_cuda = bool(gpu_ids) and torch.cuda.is_available()
        self.device = torch.device("cuda" if use_cuda else "cpu")
        node_id = ray.get_runtime_context().get_node_id()
        #: With `cpu_turns` on a CPU actor, the node's stage actors compute one at a time
        #: (`vdp.engine.cores`), each with the node's cores and one inter-op thread.
        self.turn = CpuTurn(node_id) if cpu_turns and not use_cuda else None
        if self.turn is not None:
            torch.set_num_threads(actor_threads(threads, node_cores(node_resource(node_id, "CPU"))))
            try:
                torch.set_num_interop_threads(INTEROP_THREADS)
            except RuntimeError:  # already set, or inter-op work already ran in this process
                pass
        else:
            torch.set_num_threads(threads or len(os.sched_getaffinity(0)))
        self.name = plan.name
        self.stage = plan.build()
        self.stage.setup(self.device)
        self.streams: dict[str, Any] = {}
        self.decoders: dict[str, WorkerDecoder] = {}  # streams whose frames this actor decodes
        # what a stream's results leave behind: "frames" (they go out without RGB) or "results"
        # (nothing goes out: a job without outputs)
        self.drops: dict[str, str] = {}
        self.started = time.time()
        self.frames = 0
        self.busy_seconds = 0.0
        watch_idle(self, idle_s)  # released after idle_s idle seconds

    def info(self) -> dict:
        """Process, node, device, assigned resources and work done (monitoring, planning, tests)."""
        ctx = ray.get_runtime_context()
        return {"pid": os.getpid(), "node_id": ctx.get_node_id(), "device": str(self.device),
                "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
                "resources": ctx.get_assigned_resources(), "streams": list(self.streams),
                "frames": self.frames, "busy_seconds": self.busy_seconds,
                "started": self.started, "torch_threads": torch.get_num_threads(),
                "interop_threads": torch.get_num_interop_threads(),
                "cpu_turns": self.turn.to_dict() if self.turn is not None else None,
                "thp_alloc": os.environ.get("THP_MEM_ALLOC_ENABLE"),
                **idle_info(self)}

    def can_read(self, path: str, size: int) -> dict:
        """Whether this process can decode the driver's input (`check_readable`), and where it is."""
        return {"reason": check_readable(path, size), "pid": os.getpid(),
                "node_id": ray.get_runtime_context().get_node_id()}

    def open(self, stream_id: str, info: VideoInfo, decode: DecodeRequest | None = None,
             drop_frames: bool = False, drop_results: bool = False) -> None:
        """Open a stream's state; with `decode`, this actor decodes its frames (tickets); with
        `drop_frames`, its results carry no RGB frames (`frameless`); with `drop_results`, its
        calls return no batch at all, only their facts (a job without outputs)."""
        self.streams[stream_id] = self.stage.init_state(info)
        if drop_results or drop_frames:
            self.drops[stream_id] = "results" if drop_results else "frames"
        if decode is not None:
            request = DecodeRequest(**{**decode.__dict__, "device": decode_device(self.device)})
            # a CPU actor taking turns computes on every core: decode only in the time it leaves
            self.decoders[stream_id] = WorkerDecoder(request, ray.get_runtime_context().get_node_id(),
                                                     idle=self.turn is not None)

    @ray.method(num_returns=2)
    def process(self, stream_id: str, batch: FrameBatch | None) -> tuple[FrameBatch | None, dict]:
        """Process one batch of a stream; returns (batch, {"frames", "seconds"})."""
        decoded = None
        if isinstance(batch, DecodeTicket):
            self._state(stream_id)  # a stream lost with a restart raises StreamLostError here
            decoder = self.decoders[stream_id]
            batch, decode_secs = decoder.take(batch)
            decoded = {"frames": len(batch), "seconds": decode_secs, "where": dict(decoder.where)}
        if batch is None or len(batch) == 0:
            return batch, step_meta(None, 0.0)
        with self.turn or nullcontext():
            out, self.streams[stream_id], secs = process_step(self.stage, self.name, batch,
                                                              self._state(stream_id))
        self.frames += len(batch)
        self.busy_seconds += secs
        record_batch(self.name, stream_id, len(batch), secs)  # Ray metrics
        meta = step_meta(out, secs)
        if isinstance(self.stage, FusedStage):  # progress per member stage
            meta["stages"] = self.stage.calls
        if decoded is not None:
            meta["decode"] = decoded
        return self._outgoing(stream_id, out), meta

    @ray.method(num_returns=2)
    def flush(self, stream_id: str) -> tuple[FrameBatch | None, dict]:
        with self.turn or nullcontext():
            out, secs = flush_step(self.stage, self.name, self._state(stream_id))
        self.busy_seconds += secs
        meta = step_meta(out, secs)
        if isinstance(self.stage, FusedStage):
            meta["stages"] = self.stage.calls
        return self._outgoing(stream_id, out), meta

    def _outgoing(self, stream_id: str, out: FrameBatch | None) -> FrameBatch | None:
        drop = self.drops.get(stream_id)
        if out is None or drop == "results":
            return None
        return frameless(out) if drop == "frames" else out

    def close(self, stream_id: str) -> StageReport:
        """Drop the stream's state and return what the stage wants reported."""
        self.streams.pop(stream_id, None)
        self.drops.pop(stream_id, None)
        decoder = self.decoders.pop(stream_id, None)
        if decoder is not None:
            decoder.stop()
        report = self.stage.take_report()
        record_fallbacks(self.name, stream_id, report.fallbacks)  # Ray metrics
        return report

    def prune(self, live_jobs: list[str]) -> int:
        """Drop streams opened by drivers that are gone (ids start with the driver's job id and
        ':'); returns how many were dropped."""
        dead = [sid for sid in self.streams if sid.split(":", 1)[0] not in live_jobs]
        for sid in dead:
            del self.streams[sid]
            self.drops.pop(sid, None)
            decoder = self.decoders.pop(sid, None)
            if decoder is not None:
                decoder.stop()
        return len(dead)

    def turn_intervals(self) -> list[tuple[float, float]]:
        """(start, end) wall times of the last CPU turns (empty without turns; tests)."""
        return list(self.turn.intervals) if self.turn is not None else []

    def _state(self, stream_id: str) -> Any:
        try:
            return self.streams[stream_id]
        except KeyError:
            raise StreamLostError(f"stage {self.name!r} (pid {os.getpid()}) holds no stream "
                                  f"{stream_id}: the actor restarted since it was opened") from None

