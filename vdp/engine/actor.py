"""StageActor: one stage (one loaded model) inside a Ray actor, serving many streams."""
from __future__ import annotations

import os
from typing import Any

import ray
import torch

from vdp.engine.plan import StagePlan
from vdp.engine.step import flush_step, process_step
from vdp.stages.base import StageReport
from vdp.types import FrameBatch, VideoInfo


@ray.remote(max_restarts=0)
class StageActor:
    """Holds one set-up stage; per-stream state lives in a slot keyed by stream id.

    Calls from one driver run in submission order, so a stream's batches are processed in
    frame order and its state is threaded through them.
    """

    def __init__(self, plan: StagePlan, threads: int | None = None) -> None:
        if threads:
            torch.set_num_threads(threads)
        self.name = plan.name
        self.stage = plan.build()
        use_cuda = bool(ray.get_gpu_ids()) and torch.cuda.is_available()
        self.device = torch.device("cuda" if use_cuda else "cpu")
        self.stage.setup(self.device)
        self.streams: dict[str, Any] = {}

    def info(self) -> dict:
        """Process id and device, for monitoring and fault tests."""
        return {"pid": os.getpid(), "device": str(self.device), "streams": list(self.streams)}

    def open(self, stream_id: str, info: VideoInfo) -> None:
        self.streams[stream_id] = self.stage.init_state(info)

    @ray.method(num_returns=2)
    def process(self, stream_id: str, batch: FrameBatch | None) -> tuple[FrameBatch | None, dict]:
        """Process one batch of a stream; returns (batch, {"frames", "seconds"})."""
        if batch is None or len(batch) == 0:
            return batch, {"frames": 0, "seconds": 0.0}
        out, self.streams[stream_id], secs = process_step(self.stage, self.name, batch,
                                                          self.streams[stream_id])
        return out, {"frames": len(out), "seconds": secs}

    @ray.method(num_returns=2)
    def flush(self, stream_id: str) -> tuple[FrameBatch | None, dict]:
        out, secs = flush_step(self.stage, self.name, self.streams[stream_id])
        return out, {"frames": 0 if out is None else len(out), "seconds": secs}

    def close(self, stream_id: str) -> StageReport:
        """Drop the stream's state and return what the stage wants reported."""
        self.streams.pop(stream_id, None)
        return self.stage.take_report()
