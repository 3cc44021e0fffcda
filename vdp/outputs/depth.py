"""Depth outputs: NPZ / NPY floats, 16-bit PNGs with a decoding sidecar, colour and preview MP4s.

Relative models give affine-invariant inverse depth (larger = nearer, no unit); metric models
give depth in metres. 16-bit PNGs store metric depth in millimetres; relative depth is scaled
by a factor fixed from the first frames written (no second pass over the video) and the
sidecar JSON says how to get the float values back: ``value = png * scale + offset``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vdp.io import Mp4Writer, NpyWriter, NpzWriter, Png16SequenceWriter
from vdp.outputs._pixels import as_numpy, frame_groups
from vdp.outputs.base import WriterOutput
from vdp.outputs.colormap import Colouriser, StableRange
from vdp.outputs.encoding import mp4_writer
from vdp.outputs.pixel_kernels import quantise_u16_sub_rows
from vdp.outputs.stamp import stamp, text_mask
from vdp.spec import OutputSpec, check_depth_kind
from vdp.types import FrameBatch, VideoInfo

SYNTHETIC_STAMP = "synthetic weights - not real depth"


class _DepthOutput(WriterOutput):
    def __init__(self, spec: OutputSpec, path: Path, info: VideoInfo, *, num_frames: int,
                 depth_kind: str = "relative", synthetic: bool = False, **_: object) -> None:
        super().__init__(spec, path, info)
        self.num_frames = num_frames
        self.depth_kind = check_depth_kind(depth_kind)
        self.synthetic = synthetic


class DepthNpzOutput(_DepthOutput):
    """``depth.npz`` with one float32 array ``depth`` [N,H,W]."""

    def write(self, batch: FrameBatch) -> None:
        if self.writer is None:
            self.writer = NpzWriter(self.path, num_frames=self.num_frames, key="depth")
        self.writer.write(batch.layers["depth"].float())


class DepthNpyOutput(_DepthOutput):
    """A folder of ``.npy`` files, one float32 [T,H,W] array per written batch (``depth_{first:06d}.npy``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp")
        self.parts: list[NpyWriter] = []

    def write(self, batch: FrameBatch) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)
        w = NpyWriter(self.tmp / f"depth_{int(batch.indices[0]):06d}.npy", num_frames=len(batch))
        w.write(batch.layers["depth"].float())
        w.close()
        self.parts.append(w)

    def close(self) -> Path:
        self.tmp.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            _remove_tree(self.path)
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        _remove_tree(self.tmp)


class DepthPng16Output(_DepthOutput):
    """A folder of 16-bit PNGs plus ``<name>.json`` describing how to decode them."""

    MAX = 65535

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.scale: float | None = 0.001 if self.depth_kind == "metric" else None
        self.clipped = 0

    def write(self, batch: FrameBatch) -> None:
        depth = batch.layers["depth"].float()
        if self.scale is None:  # relative: fix the scale once, with headroom, from the first batch
            sample = depth.flatten()[:: max(1, depth.numel() // 1_000_000)]
            finite = sample[torch.isfinite(sample)]
            peak = float(torch.quantile(finite, 0.999)) if finite.numel() else 1.0
            self.scale = max(peak * 1.5, 1e-6) / self.MAX
        if self.writer is None:
            self.writer = Png16SequenceWriter(self.path, start_index=int(batch.indices[0]),
                                              level=self.spec.png_level)
        src, scale = as_numpy(depth), np.float32(self.scale)
        for start, stop in frame_groups(*src.shape):  # an 8K batch is not quantised in one piece
            # quantised straight into the PNGs' filtered rows, in buffers the writer reuses
            rows = self.writer.row_buffers(stop - start, *src.shape[1:])
            for i in range(start, stop):  # NaN stores 0 (not counted); the rest outside is counted
                self.clipped += quantise_u16_sub_rows(np.ascontiguousarray(src[i]), scale, rows[i - start])
            self.writer.write_filtered(rows)

    def fixed_ranges(self) -> dict:
        return {} if self.scale is None else {"scale": self.scale}

    def adopt_ranges(self, ranges: dict) -> None:
        if "scale" in ranges:
            self.scale = float(ranges["scale"])

    def close(self) -> Path:
        super().close()
        sidecar = {
            "kind": self.depth_kind,
            "unit": "metres" if self.depth_kind == "metric" else "relative inverse depth (larger = nearer)",
            "scale": self.scale, "offset": 0.0, "decode": "value = png * scale + offset",
            "clipped_pixels": self.clipped, "synthetic_weights": self.synthetic,
        }
        _write_json(self.path.with_name(self.path.name + ".json"), sidecar)
        return self.path


class DepthColorMp4Output(_DepthOutput):
    """Colourised depth (near = warm) with one colour range for the whole video, at the source's
    size up to the spec's `~vdp.spec.OutputSpec.picture_side` (scaled down beyond it)."""

    shows_video = False  # the frames carry the source's pixels (HDR kept as HDR, see mp4_writer)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.range = StableRange(low_pct=2.0, high_pct=98.0, margin=0.1)
        self.colouriser = Colouriser(self.spec.colormap, self.range)
        self._mask: torch.Tensor | None = None

    def fixed_ranges(self) -> dict:
        return {} if self.range.low is None else {"low": self.range.low, "high": self.range.high}

    def adopt_ranges(self, ranges: dict) -> None:
        if "low" in ranges:
            self.range.low, self.range.high = float(ranges["low"]), float(ranges["high"])

    def nearness(self, batch: FrameBatch) -> torch.Tensor:
        """Float ``[T,h,w]``, larger = nearer (relative depth as is, metric depth inverted)."""
        depth = batch.layers["depth"].float()
        return depth if self.depth_kind == "relative" else 1.0 / depth.clamp_min(1e-3)

    def shown(self, batch: FrameBatch) -> torch.Tensor:
        """`nearness` at the picture's size."""
        near = self.nearness(batch)
        return scale_picture(near, picture_size(self.spec, *near.shape[-2:]))

    def colour(self, batch: FrameBatch) -> torch.Tensor:
        return self.colouriser(self.shown(batch))

    def frames(self, batch: FrameBatch) -> torch.Tensor:
        return self.colour(batch)

    def open_writer(self, frames: torch.Tensor) -> Mp4Writer:
        """The MP4 writer, opened on the first batch's `frames` ``[T,3,H,W]`` (or ``[T,H,W]``)."""
        from vdp.outputs.stereo import choose_codec  # HEVC when too large for H.264 decoders

        return mp4_writer(self.spec, self.path, fps=self.info.fps,
                          codec=choose_codec(int(frames.shape[-1]), int(frames.shape[-2])),
                          pixels_of=self.info if self.shows_video else None)

    def write(self, batch: FrameBatch) -> None:
        h, w = picture_size(self.spec, *batch.layers["depth"].shape[-2:])
        if not self.shows_video and not self.synthetic and h % 2 == 0 and w % 2 == 0:
            # straight to BT.709 4:2:0 through YUV tables: no RGB frames, no conversion; the
            # colour range comes from the whole first batch, the planes from a few frames at a time
            if self.range.low is None and len(batch):
                self.range.fit(self.nearness(batch))
            for start, stop in frame_groups(len(batch), *batch.layers["depth"].shape[-2:]):
                y, u, v = self.colouriser.yuv420(self.shown(batch.slice(start, stop)))
                if self.writer is None:
                    self.writer = self.open_writer(y)
                self.writer.write_yuv420(y, u, v)
            return
        # RGB frames one at a time: a batch of full-resolution colour, preview and stamped
        # copies is gigabytes at 8K. The colour range is still fixed from the whole first batch.
        if self.range.low is None and len(batch):
            self.range.fit(self.nearness(batch))
        for i in range(len(batch)):
            frames = self.frames(batch.slice(i, i + 1))
            if self.synthetic:
                if self._mask is None:
                    self._mask = text_mask(SYNTHETIC_STAMP, frames.shape[3], frames.shape[2])
                frames = stamp(frames, self._mask)
            if self.writer is None:
                self.writer = self.open_writer(frames)
            self.writer.write(frames)


class DepthPreviewMp4Output(DepthColorMp4Output):
    """Side-by-side preview: the RGB frame | its colourised depth (2W x H), each half at most
    the spec's `~vdp.spec.OutputSpec.picture_side` on its long side (by default an 8K source's
    preview is 7680x2160, not 15360x4320: past every HEVC decoder's limit, ~5 GB to encode)."""

    shows_video = True

    def frames(self, batch: FrameBatch) -> torch.Tensor:
        size = picture_size(self.spec, batch.height, batch.width)
        return torch.cat([scale_picture(batch.frames, size), self.colouriser(self.shown(batch))], dim=3)


def fit_side(h: int, w: int, side: int) -> tuple[int, int]:
    """(h, w) scaled so the long side is `side`, both even (4:2:0)."""
    k = side / max(h, w)
    return max(2, round(h * k / 2) * 2), max(2, round(w * k / 2) * 2)


def picture_size(spec: OutputSpec, height: int, width: int) -> tuple[int, int]:
    """(height, width) of `spec`'s pictures (of each half, side by side) for a `height` x `width`
    source: scaled to `~vdp.spec.OutputSpec.picture_side` when larger."""
    side = spec.picture_side()
    return fit_side(height, width, side) if side and max(height, width) > side else (height, width)


def scale_picture(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Frames ``[T,h,w]`` (float) or ``[T,3,h,w]`` (uint8 in and out) at `size`, antialiased
    bilinear (`x` itself when it has that size already)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if x.ndim == 3:
        return F.interpolate(x[:, None], size=size, mode="bilinear", antialias=True, align_corners=False)[:, 0]
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
