"""Refine stage: the SSM temporal refiner on the Stage contract.

Consumes the ``depth`` layer ``[T, H, W]`` float32 (and, for an RGB refiner, the batch's video
frames) and replaces it with refined depth of the same kind and units. Windows, blending and
the teacher frames they need are carried across batches in the stream state
(`vdp.refiner.windows`), so the output does not depend on how the stream is cut into batches;
frames come out as soon as the last window covering them has run (up to N + stride - 1 frames
later: 55 with the shipped windows of 32 every 24, 17 with ``windows: [12, 6]``) and `flush`
emits the rest.

Depth kind (``depth_kind``): ``metric`` for Metric Video Depth Anything (metres, refined as
is), ``relative`` for relative VDA (disparity-like, >= 0, unknown affine), refined on the
pseudo depth ``1 / (d / m0 + eps)`` with ``m0`` the median of the stream's first frame
(`vdp.refiner.depth_kind`). There is no ``auto``: a layer alone cannot tell metres from an
arbitrarily scaled disparity, and the engine knows which model produced it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import torch

from vdp.errors import SpecError, StageError
from vdp.models.refiner.config import with_windows
from vdp.models.refiner.load import load_refiner
from vdp.models.refiner.model import Refiner
from vdp.refiner.inference import PositiveDepth, make_window_fn
from vdp.refiner.windows import WORK_PIXELS, StreamState, WindowedStream
from vdp.spec import JobSpec, RefineSpec, check_depth_kind, check_precision
from vdp.stages.base import Fallback, Stage
from vdp.stages.toolkit import autocast_dtype, precision_name
from vdp.types import FrameBatch, VideoInfo



@dataclass
class RefineState:
    """Carry of one stream.

    Attributes:
        stream: Window bookkeeping and blend accumulators.
        conversion: Metric/relative mapping, fixed by the first frame.
        pending: Input frames not emitted yet (with their other layers and original depth).
        frames_done: Frames emitted so far.
    """

    stream: StreamState = field(default_factory=StreamState)
    conversion: PositiveDepth | None = None
    pending: FrameBatch | None = None
    frames_done: int = 0


class RefineStage(Stage):
    """Temporal depth refiner stage.

    Args:
        spec: Refiner options: checkpoint (None = the one shipped with vdp), whether to feed
            the derived confidence, the blend (share of the correction applied) and the
            do-no-harm limit on each frame's median change (`vdp.refiner.windows`).
        precision: ``auto`` or ``fp32`` (float32), ``fp16`` or ``bf16`` (autocast on CUDA; CPU
            stays float32). A window whose reduced-precision output is not finite is re-run in
            fp32 and recorded in the stage report.
        depth_kind: ``metric`` or ``relative`` (see module docstring).
    """

    name = "refine"

    def __init__(self, spec: RefineSpec, *, precision: str = "auto", depth_kind: str = "metric") -> None:
        super().__init__()
        self.spec = spec
        self.depth_kind = check_depth_kind(depth_kind)
        self.precision = check_precision(precision)
        self.model: Refiner | None = None
        self._stream: WindowedStream | None = None

    @classmethod
    def from_job(cls, options: RefineSpec, job: JobSpec) -> "RefineStage":
        return cls(options, precision=job.precision, depth_kind=job.depth_kind)

    @classmethod
    def config_key(cls, options: RefineSpec, job: JobSpec) -> tuple:
        return (job.depth_kind, job.precision, options.checkpoint or "shipped",
                options.use_confidence, options.blend, options.max_frame_shift, options.windows)

    def setup(self, device: torch.device | str) -> None:
        super().setup(device)
        self.model = load_refiner(self.spec.checkpoint).to(self.device)
        if self.spec.windows is not None:
            try:
                self.model.config = with_windows(self.model.config, *self.spec.windows)
            except ValueError as exc:
                raise SpecError(f"refine.windows {list(self.spec.windows)}: {exc}") from None
        opts = {"use_confidence": self.spec.use_confidence, "blend": self.spec.blend}
        exact = make_window_fn(self.model, device=self.device, **opts)
        dtype = self._autocast_dtype()
        fast = None if dtype is None else make_window_fn(self.model, device=self.device,
                                                          autocast_dtype=dtype, **opts)

        def run_window(depth: torch.Tensor, start: int, rgb: torch.Tensor | None) -> torch.Tensor:
            if fast is None:
                return exact(depth, start, rgb)
            rho = fast(depth, start, rgb)
            if not bool(torch.isfinite(rho).all()):
                self.report.fell_back(Fallback(self.name, start, start + rho.shape[0] - 1,
                                               precision_name(dtype), "non-finite refiner output"))
                rho = exact(depth, start, rgb)
            return rho

        self._stream = WindowedStream(self.model.config, run_window,
                                      max_frame_shift=self.spec.max_frame_shift,
                                      max_pixels=WORK_PIXELS)

    def _autocast_dtype(self) -> torch.dtype | None:
        """Reduced precision only when asked for explicitly, and only on CUDA.

        ``auto`` means fp32: the refiner is small (a few % of the depth model's time) and the
        log-depth changes it removes (~0.1 %) are below bf16's resolution.
        """
        return autocast_dtype(self.precision, self.device, auto=None, on_cpu=False)

    def init_state(self, info: VideoInfo) -> RefineState:
        return RefineState()

    def process(self, batch: FrameBatch, state: RefineState) -> tuple[FrameBatch, RefineState]:
        if self._stream is None:
            raise StageError("RefineStage.setup(device) must run before process", stage=self.name)
        if "depth" not in batch.layers:
            raise StageError(f"refine needs a 'depth' layer; batch has {sorted(batch.layers) or 'none'}",
                             stage=self.name, first_frame=_first(batch), last_frame=_last(batch))
        depth = batch.layers["depth"]
        if depth.ndim != 3 or tuple(depth.shape[1:]) != (batch.height, batch.width):
            raise StageError(f"depth layer must be [T,{batch.height},{batch.width}], "
                             f"got {tuple(depth.shape)}",
                             stage=self.name, first_frame=_first(batch), last_frame=_last(batch))
        if len(batch) == 0:
            return batch, state
        if state.conversion is None:
            state.conversion = PositiveDepth.start(self.depth_kind, depth[0])
        state.pending = batch if state.pending is None else FrameBatch.concat([state.pending, batch])
        try:
            rgb = batch.frames if self.model.config.rgb else None
            refined, state.stream = self._stream.push(state.stream, state.conversion.forward(depth), rgb)
        except RuntimeError as exc:
            raise StageError(f"refiner failed: {exc}", stage=self.name, first_frame=_first(batch),
                             last_frame=_last(batch)) from exc
        return self._emit(refined, state), state

    def flush(self, state: RefineState) -> FrameBatch | None:
        if state.pending is None or len(state.pending) == 0 or self._stream is None:
            return None
        refined = self._stream.flush(state.stream)
        return self._emit(refined, state)

    def _emit(self, refined: torch.Tensor, state: RefineState) -> FrameBatch:
        pending = state.pending
        k = refined.shape[0]
        if k == 0:
            return FrameBatch.empty(pending.height, pending.width).with_layers(
                **{n: v[:0] for n, v in pending.layers.items()})
        out = pending.slice(0, k)
        original = out.layers["depth"]
        depth = state.conversion.inverse(refined.to(original.device), original).to(torch.float32)
        state.pending = pending.slice(k)
        state.frames_done += k
        return out.with_layers(depth=depth)


def _first(batch: FrameBatch) -> int | None:
    return int(batch.indices[0]) if len(batch) else None


def _last(batch: FrameBatch) -> int | None:
    return int(batch.indices[-1]) if len(batch) else None

