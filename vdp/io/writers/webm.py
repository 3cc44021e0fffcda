"""VP9 WebM with an alpha channel (yuva420p), and a reader that gets the alpha back.

Encoding pipes the raw RGB frames (packed or planar, as they are) and the alpha plane as two
inputs of imageio-ffmpeg's bundled ffmpeg (libvpx-vp9), which joins them (`with_alpha`): no
copy in this process, and the alpha reaches the encoder exactly. Alpha in
VP9 WebM lives in a side channel that only the libvpx decoder returns; FFmpeg's native vp9
decoder silently drops it, hence `read_webm_rgba` forces ``-c:v libvpx-vp9``.
"""
from __future__ import annotations

import os
import subprocess

import numpy as np
import torch

from vdp.errors import DecodeError
from vdp.io._ffmpeg import FfmpegPipe, run_ffmpeg
from vdp.io.colour import SDR_BT709, tag_args
from vdp.io.probing import probe
from vdp.io.source_facts import DEFAULT_TIMEOUT_S
from vdp.io.writers._atomic import rgb_alpha_tensors
from vdp.io.writers._pipe import PipeWriter, rgb_alpha_buffers, rgb_layout, with_alpha


class WebmAlphaWriter(PipeWriter):
    """A VP9 WebM with alpha (yuva420p), encoded batch by batch; any size, odd included.

    Args:
        path: Output ``.webm``.
        fps: Frame rate of the output (constant).
        crf: libvpx-vp9 quality (0 best .. 63); 24 keeps alpha within ~1/255 on average.
        speed: libvpx ``-cpu-used`` (0 slowest/best .. 8 fastest).
        deadline: libvpx ``-deadline``: ``"realtime"`` (with speed 8: ~1/6 of the CPU of
            ``"good"`` at speed 4, files ~20% larger) or ``"good"``.
        timeout_s: Deadline for each batch sent to ffmpeg and for finishing the file.
    """

    def __init__(self, path: str | os.PathLike[str], *, fps: float, crf: int = 24,
                 speed: int = 8, deadline: str = "realtime", timeout_s: float = 600.0) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps!r}")
        if not 0 <= crf <= 63:
            raise ValueError(f"crf must be in 0..63, got {crf}")
        if deadline not in ("realtime", "good", "best"):
            raise ValueError(f"deadline must be 'realtime', 'good' or 'best', got {deadline!r}")
        super().__init__(path, tmp_suffix=".webm")
        self.fps = float(fps)
        self.crf = int(crf)
        self.speed = int(speed)
        self.deadline = deadline
        self.timeout_s = float(timeout_s)
        self._pipe: FfmpegPipe | None = None

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The running ffmpeg process (None before the first write)."""
        return None if self._pipe is None else self._pipe.process

    def write(self, rgb: np.ndarray | torch.Tensor, alpha: np.ndarray | torch.Tensor) -> None:
        """Append frames.

        Args:
            rgb: uint8 ``[T,3,H,W]``.
            alpha: uint8 ``[T,H,W]`` (255 = opaque).

        Raises:
            ValueError: Wrong dtype/shapes or a size change.
            EncodeError: ffmpeg failed, exited or stalled (the output is aborted).
        """
        rgb_t, alpha_t = rgb_alpha_tensors(rgb, alpha)
        size = (int(rgb_t.shape[2]), int(rgb_t.shape[3]))
        self._check_size(size)
        layout = self._layout or rgb_layout(rgb_t)
        self._send(size, layout, rgb_alpha_buffers(rgb_t, alpha_t, layout))

    def _start(self, size: tuple[int, int], layout: str) -> None:
        self._pipe = FfmpegPipe.raw_videos(
            [layout, "gray"], size, self.fps,
            ["-filter_complex", with_alpha(SDR_BT709, "yuva420p"), *tag_args(SDR_BT709),
             "-c:v", "libvpx-vp9", "-crf", str(self.crf), "-b:v", "0",
             "-deadline", self.deadline, "-cpu-used", str(self.speed), "-row-mt", "1",
             # bitexact: no random segment UID, so the same frames give the same file
             "-fflags", "+bitexact", "-f", "webm", self.tmp_path],
            timeout_s=self.timeout_s, what=f"encoding {self.path}")


def read_webm_rgba(path: str | os.PathLike[str], *,
                   timeout_s: float = DEFAULT_TIMEOUT_S) -> np.ndarray:
    """Decode a VP9 WebM with alpha, whole, with the libvpx decoder (tests and small clips).

    Args:
        path: A ``.webm`` written by `WebmAlphaWriter` (or any VP9 with alpha).
        timeout_s: Deadline for probing and for the ffmpeg run.

    Returns:
        uint8 ``[T,H,W,4]`` RGBA (alpha 255 everywhere when the file has none).

    Raises:
        DecodeError: The file cannot be read or decoded.
    """
    info = probe(path, timeout_s=timeout_s)
    raw = run_ffmpeg(["-c:v", "libvpx-vp9", "-i", os.fspath(path), "-f", "rawvideo",
                      "-pix_fmt", "rgba", "-"], timeout_s=timeout_s,
                     what=f"decoding {path} with libvpx-vp9", error=DecodeError)
    frame_bytes = info.height * info.width * 4
    if not raw or len(raw) % frame_bytes:
        raise DecodeError(f"{path}: ffmpeg returned {len(raw)} bytes, not a whole number of "
                          f"{info.width}x{info.height} RGBA frames")
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, info.height, info.width, 4)


def read_webm_alpha(path: str | os.PathLike[str], *,
                    timeout_s: float = DEFAULT_TIMEOUT_S) -> np.ndarray:
    """The alpha channel of a VP9 WebM (see `read_webm_rgba`).

    Returns:
        uint8 ``[T,H,W]``.
    """
    return np.ascontiguousarray(read_webm_rgba(path, timeout_s=timeout_s)[..., 3])
