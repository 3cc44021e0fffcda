"""StereoStage: left and right views from RGB + depth (depth-image-based rendering).

Reads layer ``depth`` ``[T,H,W]`` (relative inverse depth, or metric depth in metres) and
adds layer ``stereo`` uint8 ``[T,2,3,H,W]`` (left view, right view). Per frame:

1. depth → disparity (``1/z`` for metric depth), resized to the frame if needed;
2. disparity → nearness in [0,1] with a streaming, smoothed range
   (`vdp.stereo.normalise.StreamingRange`): the stage holds up to ``lookahead_frames``
   frames so each range can see that far ahead, and emits them later (the rest at flush);
3. the two views by forward warping with z-ordering and background hole filling
   (`vdp.stereo.dibr.stereo_pair`), on the stage's device.

A new segment (scene cut) gets a fresh state from the runner, so ranges never mix shots.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from vdp.errors import StageError
from vdp.spec import JobSpec, StereoSpec, check_depth_kind, check_precision
from vdp.stages.base import Stage
from vdp.stages.toolkit import autocast_dtype
from vdp.stereo.dibr import stereo_pair
from vdp.stereo.normalise import StreamingRange, depth_to_disparity, frame_percentiles, normalise
from vdp.types import FrameBatch, VideoInfo

#: Percentiles of each frame's disparity that define its range (robust to outlier pixels).
LOW_PCT, HIGH_PCT = 2.0, 98.0
#: Frames are rendered in slices of at most this many pixels (bounds device memory).
PIXELS_PER_CALL = 8_388_608


@dataclass
class StereoState:
    """Per-stream carry of `StereoStage`.

    Attributes:
        ranges: Streaming disparity range (statistics of held frames, smoothing state).
        held: Frames (with their layers) waiting for their lookahead, or None.
        last_index: Last source frame index received.
        size: ``(H, W)`` of the stream's frames, fixed by the first batch.
    """

    ranges: StreamingRange
    held: FrameBatch | None = None
    last_index: int | None = None
    size: tuple[int, int] | None = None


class StereoStage(Stage):
    """Adds layer ``stereo``: uint8 ``[T,2,3,H,W]`` left and right views.

    Args:
        spec: Divergence, convergence, IPD offset, edge dilation, lookahead.
        precision: ``auto`` (fp16 colour interpolation on CUDA, fp32 on CPU), ``fp16``,
            ``bf16`` or ``fp32``. Geometry (positions, z-buffer) is always float32.
        depth_kind: ``relative`` (layer ``depth`` is inverse depth, larger = nearer) or
            ``metric`` (depth in metres).
    """

    name = "stereo"

    def __init__(self, spec: StereoSpec, *, precision: str = "auto", depth_kind: str = "relative") -> None:
        super().__init__()
        self.spec = spec
        self.precision = check_precision(precision)
        self.depth_kind = check_depth_kind(depth_kind)

    @classmethod
    def from_job(cls, options: StereoSpec, job: JobSpec) -> "StereoStage":
        return cls(options, precision=job.precision, depth_kind=job.depth_kind)

    @classmethod
    def config_key(cls, options: StereoSpec, job: JobSpec) -> tuple:
        return (options.divergence, options.convergence, options.ipd_offset, options.edge_dilation,
                options.lookahead_frames, job.precision, job.depth_kind)

    @property
    def colour_dtype(self) -> torch.dtype:
        """Float type of colour interpolation on the current device."""
        return autocast_dtype(self.precision, self.device) or torch.float32

    def init_state(self, info: VideoInfo) -> StereoState:
        return StereoState(ranges=StreamingRange(lookahead_frames=self.spec.lookahead_frames))

    def process(self, batch: FrameBatch, state: StereoState) -> tuple[FrameBatch, StereoState]:
        if len(batch) == 0:
            return _with_stereo(batch, torch.empty(0, 2, 3, batch.height, batch.width,
                                                   dtype=torch.uint8)), state
        self._check(batch, state)
        # a new state object: the one passed in stays valid, so a failed call can be re-run
        state = replace(state, ranges=state.ranges.copy(), last_index=int(batch.indices[-1]),
                        size=(batch.height, batch.width))
        stats = frame_percentiles(self._disparity(batch), LOW_PCT, HIGH_PCT)
        ranges = state.ranges.push(stats)
        held = batch if state.held is None else FrameBatch.concat([state.held, batch])
        ready, rest = held.slice(0, len(ranges)), held.slice(len(ranges))
        state.held = rest.compact() if len(rest) else None
        return self._render(ready, ranges), state

    def flush(self, state: StereoState) -> FrameBatch | None:
        """Render the held frames with the lookahead that is left (the stream has ended)."""
        if state.held is None:
            state.ranges.finish()
            return None
        held, state.held = state.held, None
        return self._render(held, state.ranges.finish())

    # -- internals ------------------------------------------------------------------------

    def _check(self, batch: FrameBatch, state: StereoState) -> None:
        first, last = int(batch.indices[0]), int(batch.indices[-1])
        if "depth" not in batch.layers:
            raise StageError(f"the stereo stage needs layer 'depth'; the batch has "
                             f"{sorted(batch.layers) or 'no layers'} (enable the depth stage)",
                             stage=self.name, first_frame=first, last_frame=last)
        depth = batch.layers["depth"]
        if depth.ndim != 3:
            raise StageError(f"layer 'depth' must be [T,H,W], got {tuple(depth.shape)}",
                             stage=self.name, first_frame=first, last_frame=last)
        if state.last_index is not None and first <= state.last_index:
            raise StageError(f"frames out of order: got frame {first} after frame {state.last_index}",
                             stage=self.name, first_frame=first, last_frame=last)
        if state.size is not None and state.size != (batch.height, batch.width):
            raise StageError(f"frame size changed mid-stream from {state.size[1]}x{state.size[0]} "
                             f"to {batch.width}x{batch.height}", stage=self.name,
                             first_frame=first, last_frame=last)

    def _disparity(self, batch: FrameBatch) -> torch.Tensor:
        """Disparity ``[T,H,W]`` at frame size, on the device."""
        disp = depth_to_disparity(batch.layers["depth"].to(self.device), self.depth_kind)
        if disp.shape[-2:] != (batch.height, batch.width):
            disp = F.interpolate(disp[:, None], size=(batch.height, batch.width), mode="bilinear",
                                 align_corners=False)[:, 0]
        return disp

    def _render(self, batch: FrameBatch, ranges: torch.Tensor) -> FrameBatch:
        if len(batch) != len(ranges):
            raise StageError(f"internal: {len(ranges)} ranges for {len(batch)} frames", stage=self.name)
        step = max(1, PIXELS_PER_CALL // (batch.height * batch.width))
        views = []
        for a in range(0, len(batch), step):
            part = batch.slice(a, a + step)
            nearness = normalise(self._disparity(part), ranges[a:a + step])
            frames = part.frames.to(self.device, non_blocking=True)
            views.append(stereo_pair(frames, nearness, divergence_pct=self.spec.divergence,
                                     convergence=self.spec.convergence,
                                     edge_dilation_px=self.spec.edge_dilation,
                                     ipd_offset_pct=self.spec.ipd_offset,
                                     dtype=self.colour_dtype).cpu())
        stereo = torch.cat(views) if views else torch.empty(0, 2, 3, batch.height, batch.width,
                                                            dtype=torch.uint8)
        return _with_stereo(batch, stereo)


def _with_stereo(batch: FrameBatch, stereo: torch.Tensor) -> FrameBatch:
    return batch.with_layers(stereo=stereo)

