"""MatteStage: Robust Video Matting on the Stage contract.

Frames are matted in calls of exactly ``spec.frames_per_call`` frames (the rest at flush), so
the output does not depend on how the engine batches frames; the recurrent states r1..r4 are
carried from call to call in frame order. Adds layers ``alpha`` uint8 ``[T,H,W]`` and
``foreground`` uint8 ``[T,3,H,W]`` (un-premultiplied colour), 0..255, on the CPU. Both are
quantized on the device: every output writes 8-bit alpha and colour, and it is a quarter of
the bytes to copy off the GPU, hold in memory and pass between actors.
"""
from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from vdp.errors import StageError, WeightsError
from vdp.models.rvm import MattingNetwork, auto_downsample_ratio
from vdp.models.synthetic import make_manifest, synthetic_state_dict
from vdp.models.weights import resolve_checkpoint
from vdp.spec import MatteSpec
from vdp.stages.base import Stage
from vdp.types import FrameBatch, VideoInfo

PRECISIONS: tuple[str, ...] = ("auto", "fp16", "bf16", "fp32")
SYNTHETIC_WARNING = "synthetic weights — not real alpha"
_AUTOCAST = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": None}


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
    produces = ("alpha", "foreground")

    def __init__(self, spec: MatteSpec, *, precision: str = "auto") -> None:
        super().__init__()
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.spec = spec
        self.precision = precision
        self.model: MattingNetwork | None = None
        self.autocast_dtype: torch.dtype | None = None

    def setup(self, device: torch.device | str) -> None:
        """Build the model, load its weights (strictly) and move it to `device`.

        Raises:
            WeightsError: The checkpoint is missing, unreadable or does not match the model.
        """
        super().setup(device)
        spec = self.spec
        model = MattingNetwork(spec.variant, refiner=spec.refiner)
        if spec.synthetic_weights:
            state_dict = synthetic_state_dict(make_manifest(model.state_dict())["keys"])
            source = "synthetic weights"
        else:
            path = resolve_checkpoint("rvm_" + spec.variant, spec.checkpoint)
            state_dict = _read_checkpoint(path)
            if spec.refiner == "fast_guided_filter":  # official checkpoints hold the DGF refiner
                state_dict = {k: v for k, v in state_dict.items() if not k.startswith("refiner.")}
            source = str(path)
        load_state_dict_strict(model, state_dict, source)
        self.model = model.eval().to(self.device)
        if self.precision == "auto":
            self.autocast_dtype = torch.float16 if self.device.type == "cuda" else None
        else:
            self.autocast_dtype = _AUTOCAST[self.precision]

    def init_state(self, info: VideoInfo) -> dict[str, Any]:
        if self.spec.synthetic_weights and SYNTHETIC_WARNING not in self.report.warnings:
            self.report.warnings.append(SYNTHETIC_WARNING)  # once per report, not per segment
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
        state["buffer"] = _copy(pending.slice(start)) if start < len(pending) else None
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
            self.report.fallbacks.append({
                "stage": self.name, "first_frame": first, "last_frame": last,
                "from": "fp16" if self.autocast_dtype == torch.float16 else "bf16", "to": "fp32",
                "reason": "non-finite values in the matte or recurrent state"})
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
        autocast = nullcontext() if dtype is None else torch.autocast(self.device.type, dtype=dtype)
        with torch.inference_mode(), autocast:
            return self.model(src, *rec, downsample_ratio=ratio)


def load_state_dict_strict(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor],
                           source: str) -> None:
    """Load `state_dict` with ``strict=True``, first checking keys and shapes.

    Raises:
        WeightsError: Names the missing keys, the unexpected keys and the shape mismatches.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [f"{k} {tuple(state_dict[k].shape)} (model {tuple(v.shape)})"
              for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape]
    problems = [f"{what} ({len(keys)}): {_first(keys)}" for what, keys in
                (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes))
                if keys]
    if problems:
        raise WeightsError(f"checkpoint {source} does not match {type(model).__name__}: " + "; ".join(problems))
    model.load_state_dict(state_dict, strict=True)


def _read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a torch file, pickled code
        raise WeightsError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"checkpoint {path} is not a state dict (a mapping of tensors), "
                           f"got {type(obj).__name__}")
    return dict(obj)


def _first(items: list[str], n: int = 8) -> str:
    more = f", ... (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


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


def _copy(batch: FrameBatch) -> FrameBatch:
    """A compact copy, so the buffer does not pin the whole batch it was sliced from."""
    return FrameBatch(batch.frames.clone(), batch.indices.clone(), batch.pts_seconds.clone(),
                      {k: v.clone() for k, v in batch.layers.items()},
                      starts_segment=batch.starts_segment)
