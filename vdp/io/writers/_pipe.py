"""Base of the writers whose encoder is an ffmpeg process fed raw frames on stdin, and the
raw layouts their RGB frames go out in."""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from vdp.errors import EncodeError
from vdp.io._ffmpeg import Buffers, FfmpegPipe
from vdp.io.colour import Colour, rgb_to_yuv_filter
from vdp.io.writers._atomic import AtomicOutput

def rgb_layout(frames: torch.Tensor) -> str:
    """The layout uint8 ``[T,3,H,W]`` frames already have in memory: ``"rgb24"`` for
    channels-last (as decoded frames are), else ``"gbrp"`` (contiguous planes)."""
    packed = frames.permute(0, 2, 3, 1)
    return "rgb24" if packed.is_contiguous() and not frames.is_contiguous() else "gbrp"


def rgb_buffers(frames: torch.Tensor, layout: str) -> list[Buffers]:
    """Each frame of uint8 ``[T,3,H,W]`` (CPU) as the buffers of one raw `layout` frame: no copy
    where the memory already has that layout (see `rgb_layout`), one conversion where not."""
    if layout == "rgb24":
        packed = frames.permute(0, 2, 3, 1).contiguous().numpy()
        return [[memoryview(packed[i]).cast("B")] for i in range(packed.shape[0])]
    planes = frames.contiguous().numpy()
    return [[memoryview(planes[i, c]).cast("B") for c in (1, 2, 0)] for i in range(planes.shape[0])]


def rgb_alpha_buffers(rgb: torch.Tensor, alpha: torch.Tensor, layout: str) -> list[list[Buffers]]:
    """Each frame as two inputs: its colour (`rgb_buffers`) and its alpha plane (``gray``), for
    a filter graph that starts with `with_alpha`. Neither is interleaved or copied here."""
    planes = alpha.contiguous().numpy()
    return [[colour, [memoryview(planes[i]).cast("B")]]
            for i, colour in enumerate(rgb_buffers(rgb, layout))]


def with_alpha(colour: Colour, pix_fmt: str) -> str:
    """Filter graph text joining input 0 (RGB) and input 1 (its alpha matte, ``gray``) into one
    `pix_fmt` stream with alpha (e.g. ``yuva420p``): the RGB converted with `colour`'s matrix
    and range, the alpha plane copied exactly (swscale's converter filters an alpha plane it
    is given: up to 108 levels off at edges, 2.4 on average, on a 1080p matte)."""
    alpha = "format=gray10le" if "10" in pix_fmt else "format=gray"
    return f"[0:v]{rgb_to_yuv_filter(colour, pix_fmt)}[rgb];[1:v]{alpha}[alpha];[rgb][alpha]alphamerge"


class PipeWriter(AtomicOutput, ABC):
    """An atomic output encoded by the ffmpeg pipe `_pipe`, which a subclass's `_start` opens
    on the first batch (`_send`); finishing waits for ffmpeg, aborting kills it."""

    _pipe: FfmpegPipe | None = None
    frame_size: tuple[int, int] | None = None  # (H, W) of the input, fixed by the first batch
    _layout = ""  # raw pixel format of ffmpeg's input 0 (e.g. "rgb24"), fixed by the first batch

    def _check_size(self, size: tuple[int, int]) -> None:
        if self.frame_size is not None and size != self.frame_size:
            raise ValueError(f"frame size changed from {self.frame_size} to {size}")

    def _send(self, size: tuple[int, int], layout: str, frames: list[list[Buffers]]) -> None:
        """Send `frames` (`FfmpegPipe.write_frames`), opening the pipe first on the first batch."""
        def run() -> None:
            if self._pipe is None:
                self.frame_size, self._layout = size, layout
                self._start(size, layout)
            self._pipe.write_frames(frames)
            self.frames_written += len(frames)
        self._guarded(run)

    @abstractmethod
    def _start(self, size: tuple[int, int], layout: str) -> None:
        """Open `_pipe` for frames of `size` ``(H, W)`` whose input 0 has the raw `layout`."""

    def _finalize(self) -> None:
        if self._pipe is None:
            raise EncodeError(f"{self.path}: no frames were written")
        pipe, self._pipe = self._pipe, None
        pipe.close()

    def _discard(self) -> None:
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            pipe.kill()
