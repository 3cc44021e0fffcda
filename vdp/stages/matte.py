"""MatteStage: Robust Video Matting on the Stage contract.

Frames are matted in calls of exactly ``spec.frames_per_call`` frames (the rest at flush), so
the output does not depend on how the engine batches frames; the recurrent states r1..r4 are
carried from call to call in frame order. Adds layers ``alpha`` uint8 ``[T,H,W]`` and
``foreground`` uint8 ``[T,3,H,W]`` (un-premultiplied colour), 0..255, on the CPU. Both are
quantized on the device: every output writes 8-bit alpha and colour, and it is a quarter of
the bytes to copy off the GPU, hold in memory and pass between actors.
"""
from __future__ import annotations

from typing import Any

import torch

from vdp.errors import StageError
from vdp.models.rvm import MattingNetwork, auto_downsample_ratio, load_model
from vdp.spec import JobSpec, MatteSpec, check_precision
from vdp.stages.base import Fallback, Stage
from vdp.stages.toolkit import autocast, autocast_dtype, precision_name, weights_label
from vdp.types import FrameBatch, VideoInfo

SYNTHETIC_WARNING = "synthetic weights — not real alpha"


class MatteStage(Stage):
    """Alpha matte and foreground colour for every frame.

    Args:
        spec: Variant, refiner, downsample ratio (None: `auto_downsample_ratio` of the first
            frame size), frames per call and weights.
        precision: ``"auto"`` (fp16 autocast on CUDA, fp32 elsewhere), ``"fp16"``, ``"bf16"``
            or ``"fp32"``. A call whose outputs or states are not finite under autocast is
            re-run in fp32 and recorded in ``self.report.fallbacks``.

    State (from `init_state`, replaced on every call): ``rec`` (r1..r4 on the device, None
    at the start), ``buffer`` (frames waiting for a full call, or None), ``ratio`` (fixed
    at the first batch), ``size`` (frame height and width) and ``last_index`` (the last frame
    index seen).
    """

    name = "matte"

    def __init__(self, spec: MatteSpec, *, precision: str = "auto") -> None:
        super().__init__()
        self.spec = spec
        self.precision = check_precision(precision)
        self.model: MattingNetwork | None = None
        self.autocast_dtype: torch.dtype | None = None

    @classmethod
    def config_key(cls, options: MatteSpec, job: JobSpec) -> tuple:
        return (options.variant, options.refiner, options.frames_per_call,
                options.downsample_ratio or "auto", job.precision,
                weights_label(options.checkpoint, options.synthetic_weights))

    def setup(self, device: torch.device | str) -> None:
        """Build the model, load its weights (strictly) and move it to `device`.

        Raises:
            WeightsError: The checkpoint is missing, unreadable or does not match the model.
        """
        super().setup(device)
        spec = self.spec
        model = load_model(spec.variant, refiner=spec.refiner, checkpoint=spec.checkpoint,
                           synthetic=spec.synthetic_weights)
        self.model = model.to(self.device)
        self.autocast_dtype = autocast_dtype(self.precision, self.device)

    def init_state(self, info: VideoInfo) -> dict[str, Any]:
        if self.spec.synthetic_weights:
            self.report.warn_once(SYNTHETIC_WARNING)  # once per report, not per segment
        return {"rec": [None] * 4, "buffer": None, "ratio": None, "last_index": None, "size": None}

    def process(self, batch: FrameBatch, state: dict[str, Any]) -> tuple[FrameBatch, dict[str, Any]]:
        if self.model is None:
            raise StageError("matte stage used before setup()", stage=self.name)
        if len(batch) == 0:
            return batch.with_layers(**_empty_layers(batch)), state
        first = int(batch.indices[0])
        if state["last_index"] is not None and first <= state["last_index"]:
            raise StageError(f"frames out of order: got frame {first} after frame {state['last_index']} "
                             "(the recurrent state needs frames in order)", stage=self.name,
                             first_frame=first, last_frame=int(batch.indices[-1]))
        size = (batch.height, batch.width)
        if state["size"] is not None and state["size"] != size:
            raise StageError(f"frame size changed mid-stream from {state['size'][1]}x{state['size'][0]} "
                             f"to {batch.width}x{batch.height}", stage=self.name,
                             first_frame=first, last_frame=int(batch.indices[-1]))
        state = dict(state, last_index=int(batch.indices[-1]), size=size)
        if state["ratio"] is None:  # fixed by the first frames, like the official converter
            state["ratio"] = self.spec.downsample_ratio or auto_downsample_ratio(*size)
        buffer = state["buffer"]
        pending = batch if buffer is None else FrameBatch.concat([buffer, batch])
        n = self.spec.frames_per_call
        done = []
        start = 0
        while len(pending) - start >= n:
            out, state["rec"] = self._call(pending.slice(start, start + n), state["rec"], state["ratio"])
            done.append(out)
            start += n
        state["buffer"] = pending.slice(start).compact() if start < len(pending) else None
        if not done:
            return pending.slice(0, 0).with_layers(**_empty_layers(pending)), state
        return (done[0] if len(done) == 1 else FrameBatch.concat(done)), state  # no copy for one call

    def flush(self, state: dict[str, Any]) -> FrameBatch | None:
        """Matte the buffered frames (fewer than ``frames_per_call``) in one last call."""
        buffer = state["buffer"]
        if buffer is None or len(buffer) == 0:
            return None
        out, state["rec"] = self._call(buffer, state["rec"], state["ratio"])
        state["buffer"] = None
        return out

    def _call(self, chunk: FrameBatch, rec: list, ratio: float) -> tuple[FrameBatch, list]:
        """One model call on `chunk` (as a ``[1,T,3,H,W]`` clip); returns the batch with layers
        and the new states. Falls back to fp32 when autocast gives non-finite values."""
        src = chunk.frames.to(self.device, non_blocking=True)[None].float().div_(255)
        outputs = self._forward(src, rec, ratio, self.autocast_dtype)
        first, last = int(chunk.indices[0]), int(chunk.indices[-1])
        if self.autocast_dtype is not None and not _all_finite(outputs):
            self.report.fell_back(Fallback(self.name, first, last, precision_name(self.autocast_dtype),
                                           "non-finite values in the matte or recurrent state"))
            rec = [None if r is None else r.float() for r in rec]
            outputs = self._forward(src, rec, ratio, None)
        if not _all_finite(outputs):
            raise StageError(f"matte has non-finite values in fp32 on frames {first}-{last} "
                             "(broken weights or input)", stage=self.name, first_frame=first,
                             last_frame=last)
        fgr, pha, *new_rec = outputs
        layers = {"alpha": _to_uint8(pha[0, :, 0]).cpu(), "foreground": _to_uint8(fgr[0]).cpu()}
        return chunk.with_layers(**layers), new_rec

    def _forward(self, src: torch.Tensor, rec: list, ratio: float,
                 dtype: torch.dtype | None) -> list[torch.Tensor]:
        with torch.inference_mode(), autocast(self.device, dtype):
            return self.model(src, *rec, downsample_ratio=ratio)


def _all_finite(tensors: list[torch.Tensor]) -> bool:
    """True when no element is NaN or infinite: a sum is finite only if every element is (it
    is one reduction, no mask; a sum overflowing float32 errs on the safe side)."""
    return bool(torch.isfinite(torch.stack([t.sum(dtype=torch.float32) for t in tensors])).all())


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Values in [0,1] (any float dtype; the model clamps its outputs) rounded half up to uint8
    0..255: two passes, in place on `x` (a model output, an inference tensor)."""
    with torch.inference_mode():
        return x.mul_(255).add_(0.5).to(torch.uint8)  # truncation of v + 0.5 >= 0 rounds


def _empty_layers(batch: FrameBatch) -> dict[str, torch.Tensor]:
    h, w = batch.height, batch.width
    return {"alpha": torch.empty(0, h, w, dtype=torch.uint8),
            "foreground": torch.empty(0, 3, h, w, dtype=torch.uint8)}

