"""Decoding with TorchCodec: open a file (its metadata: `vdp.io.probing.probe`), then read it as
in-order RGB frame batches.

What TorchCodec 0.13 already does, and vdp relies on:
    * rotation metadata is applied (frames and ``width``/``height`` are in display
      orientation, e.g. a phone clip stored 568x320 with rotation -90 comes out 320x568); a
      display matrix that also mirrors (MP4/MOV ``tkhd``, e.g. ``-display_hflip``) is completed
      here by a flip after TorchCodec's rotation, so frames equal ffmpeg's autorotated ones;
    * 10/12-bit sources are converted to 8-bit RGB;
    * ``seek_mode="exact"`` scans the container once on open, so frame ``i`` is exactly frame
      ``i``, a batch starting at ``start_frame`` seeks to the keyframe before it (no decoding
      from zero) and variable-frame-rate streams keep their true ``pts_seconds``.

Frame count: the frames the open-time scan finds are the truth; the container's declared count
is a hint. When the container declares more (an MP4 edit list that cuts leading frames, an AVI
header that overstates, a file cut short), the source has the frames found, and
``info.warnings`` says "declared N, decoded M" (the job copies it into report.json). Raw
elementary streams (``.h264``, ``.hevc``: no container, no timestamps, not seekable) are
converted once by ffmpeg into a cached lossless FFV1 Matroska copy (same pixels, pixel format and
colour tags; remuxing with ``-c copy`` cannot give B-frame streams timestamps) and decoded from
there; ``info.codec`` stays the source's codec.

Frame rate: the scanned average (frames / duration) when the container declares an average rate
and the scan is plausible (a declared rate that differs means a variable rate: the average is
kept); otherwise (no declared average, as in MKV without a default duration, or an implausible
scan) the rate from the packet timestamps, ``1 / median frame duration`` (`vdp.io.source_facts`). A stream whose
frames all share one timestamp gets its nominal rate and a warning.

Colour: TorchCodec converts YUV to RGB with the stream's own matrix and range (BT.709, full
range: see `vdp.io.colour`); ``info`` carries the stream's primaries, transfer, matrix and
range. HDR streams (PQ / HDR10, HLG) are tone-mapped to SDR BT.709 by default: the first batch
request makes (once, cached) a tone-mapped lossless copy (`vdp.io.tonemap`) and decoding goes on
from there; ``info.tone_mapping`` names the operator and a warning says so. ``hdr="keep"``
decodes the HDR signal as it is (8-bit RGB in the source's primaries and transfer), for outputs
that keep HDR.

Broken input always raises `DecodeError` (never hangs: opening and every batch run under a
deadline, see `timeout_s`):
    * missing, empty, not a container, no video stream (audio only), no frames: raised on open;
    * corrupted mid-stream: frames are yielded up to the first frame that fails to decode, then
      `DecodeError` says how many frames decoded OK and the failing index. Bad frames are never
      skipped or replaced: every later stage relies on frame ``i`` of the output being frame
      ``i`` of the source, so a stream with a hole is an error, not a warning;
    * a decoder that returns fewer frames than asked for is treated the same way.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TypeVar

import torch
from torchcodec.decoders import AudioDecoder, VideoDecoder

from vdp.errors import DecodeError, JobTimeoutError
from vdp.io._deadline import call_with_deadline
from vdp.io._streams import remux_elementary_stream, video_track_reflected
from vdp.io.colour import source_colour
from vdp.io.source_facts import (DEFAULT_TIMEOUT_S, HDR_MODES, bit_depth_of, frame_rate,
                                 short_count_warning, tone_mapping_of)
from vdp.io.tonemap import tonemapped_copy
from vdp.types import FrameBatch, VideoInfo

T = TypeVar("T")

_SOURCE_PREFIX = re.compile(r"^\w+, \S+:\d+, ")
#: TorchCodec's messages for a stream it cannot index: no container (raw elementary stream).
_UNSEEKABLE = ("Could not seek file", "maximum pts value in seconds is unknown")


@dataclass
class DecodeStatus:
    """Where decoding actually runs, and why it differs from the request.

    Attributes:
        requested_device: The device asked for, e.g. ``"cuda:0"``.
        device: The device frames are decoded on (``"cpu"`` after a fallback).
        fallback: True when decoding did not (fully) run where requested.
        reason: Why it fell back ("" when it did not).
    """

    requested_device: str
    device: str
    fallback: bool = False
    reason: str = ""


def _clean(exc: BaseException) -> str:
    """TorchCodec's message without its C++ source location and bug-report boilerplate."""
    text = str(exc).split("\nThis should never happen")[0].strip()
    return _SOURCE_PREFIX.sub("", text)


def _check_device(device: str | torch.device) -> str:
    name = str(device)
    if name != "cpu" and not re.fullmatch(r"cuda(:\d+)?", name):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {name!r}")
    return name


class VideoSource:
    """One opened video: its `info`, then frame batches in order from any start frame.

    Args:
        path: Video file.
        device: ``"cpu"``, or ``"cuda"``/``"cuda:N"`` for NVDEC. When CUDA cannot be used the
            source decodes on CPU and says why in `status`.
        num_threads: FFmpeg decoding threads on CPU (1: best when several sources decode in
            parallel; 0: FFmpeg decides).
        timeout_s: Deadline for opening and for each batch; overrunning raises
            `JobTimeoutError` and the source cannot be used afterwards.
        hdr: ``"tonemap"`` (HDR sources decode as SDR BT.709, see the module doc) or
            ``"keep"`` (the HDR signal as it is).
        stream_index: Absolute index of the video stream to decode (None: FFmpeg's best one;
            see `vdp.io.streams` for choosing by position).

    Attributes:
        info: Stream metadata in display orientation.
        status: Requested vs actual decode device.

    Raises:
        DecodeError: The file is missing, empty, not a video, has no video stream or is
            truncated.
        JobTimeoutError: Opening took longer than `timeout_s`.
    """

    def __init__(self, path: str | os.PathLike[str], *, device: str | torch.device = "cpu",
                 num_threads: int = 1, timeout_s: float = DEFAULT_TIMEOUT_S,
                 hdr: str = "tonemap", stream_index: int | None = None) -> None:
        self.path = os.fspath(path)
        if hdr not in HDR_MODES:
            raise ValueError(f"hdr must be one of {', '.join(HDR_MODES)}, got {hdr!r}")
        self.hdr = hdr
        self.stream_index = stream_index
        self.timeout_s = float(timeout_s)
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
        if num_threads < 0:
            raise ValueError(f"num_threads must be >= 0 (0: FFmpeg decides), got {num_threads}")
        self._num_threads = int(num_threads)
        self._timed_out = False
        requested = _check_device(device)
        self.status = DecodeStatus(requested_device=requested, device=requested)
        self.warnings: list[str] = []
        self._decode_path = self.path
        self._raw_codec = ""
        self._check_file()
        self._decoder = self._open(requested)
        self.colour = source_colour(self.path, timeout_s=self.timeout_s,
                                    stream_index=self._stream_in_decode_path())
        self._tone_mapping, warning = tone_mapping_of(os.path.basename(self.path), self.colour.transfer,
                                                      self.colour.is_hdr, hdr)
        self._tonemap_pending = bool(self._tone_mapping)
        self.warnings += [warning] if warning else []
        self.info = self._make_info()
        # TorchCodec rotates by the angle libavutil reads from a mirroring matrix; what is left
        # is a flip along the displayed width (quarter turns) or height (0 or 180 degrees).
        self._flip_dim = 0
        if video_track_reflected(self._decode_path, self._stream_in_decode_path()):
            self._flip_dim = -1 if self.info.rotation_degrees % 180 else -2

    # -- opening -------------------------------------------------------------------------
    def _call(self, fn: Callable[[], T], what: str) -> T:
        if self._timed_out:
            raise JobTimeoutError(f"{self.path}: an earlier decode call timed out; reopen the file")
        try:
            return call_with_deadline(fn, self.timeout_s, f"{what} {self.path}")
        except JobTimeoutError:
            self._timed_out = True
            raise

    def _check_file(self) -> None:
        if not os.path.exists(self.path):
            raise DecodeError(f"{self.path}: no such file")
        if not os.path.isfile(self.path):
            raise DecodeError(f"{self.path}: not a regular file")
        if os.path.getsize(self.path) == 0:
            raise DecodeError(f"{self.path}: the file is empty (0 bytes)")

    def _stream_in_decode_path(self) -> int | None:
        """Absolute index of the decoded stream in the file being decoded (None: its only one)."""
        return self._decoder.metadata.stream_index if self._decode_path == self.path else None

    def _make_decoder(self, device: str) -> VideoDecoder:
        index = None if self._decode_path != self.path else self.stream_index  # a raw copy has one
        return VideoDecoder(self._decode_path, device=device, num_ffmpeg_threads=self._num_threads,
                            seek_mode="exact", dimension_order="NCHW", stream_index=index)

    def _open(self, device: str) -> VideoDecoder:
        if device.startswith("cuda"):
            if not torch.cuda.is_available():
                reason = "CUDA is not available to torch"
            else:
                try:
                    return self._call(lambda: self._make_decoder(device), "opening (NVDEC)")
                except (RuntimeError, ValueError) as exc:
                    reason = f"NVDEC could not open the file: {_clean(exc)}"
            self.status = DecodeStatus(device, "cpu", fallback=True, reason=reason)
        try:
            decoder = self._call(lambda: self._make_decoder("cpu"), "opening")
        except (RuntimeError, ValueError) as exc:
            if self._decode_path != self.path or not any(m in str(exc) for m in _UNSEEKABLE):
                raise DecodeError(self._explain_open_failure(exc)) from None
            self._decode_path, self._raw_codec = remux_elementary_stream(
                self.path, timeout_s=self.timeout_s)
            self.warnings.append(f"{os.path.basename(self.path)}: raw {self._raw_codec} elementary "
                                 f"stream (no container): decoded from a lossless FFV1 copy")
            return self._open(device)
        self._check_frame_counts(decoder)
        return decoder

    def _explain_open_failure(self, exc: BaseException) -> str:
        msg = _clean(exc)
        if "video stream" in msg:
            if self._has_audio():
                return f"{self.path}: no video stream (the file contains only audio)"
            return f"{self.path}: no video stream"
        return (f"{self.path}: not a readable video file; it may be truncated or not a video "
                f"at all ({msg})")

    def _check_frame_counts(self, decoder: VideoDecoder) -> None:
        md = decoder.metadata
        if not md.num_frames:
            raise DecodeError(f"{self.path}: the video stream has no frames")
        content = md.num_frames_from_content
        warning = None if content is None else short_count_warning(
            os.path.basename(self.path), md.num_frames_from_header, content)
        self.warnings += [warning] if warning else []

    def _has_audio(self) -> bool:
        try:
            self._call(lambda: AudioDecoder(self._decode_path), "probing audio of")
        except (RuntimeError, ValueError):
            return False
        return True

    def _make_info(self) -> VideoInfo:
        md = self._decoder.metadata
        n = int(md.num_frames)
        duration = float(md.duration_seconds or 0.0)
        fps, warning = frame_rate(self._decode_path, os.path.basename(self.path),
                                  float(md.average_fps or 0.0), float(md.average_fps_from_header or 0.0),
                                  stream_index=md.stream_index, timeout_s=self.timeout_s)
        self.warnings += [warning] if warning else []
        pix_fmt = md.pixel_format or ""
        return VideoInfo(path=self.path, num_frames=n, fps=fps, duration_seconds=duration,
                         width=int(md.width), height=int(md.height),
                         codec=self._raw_codec or md.codec or "",
                         pixel_format=pix_fmt, rotation_degrees=int(round(md.rotation or 0)),
                         has_audio=self._has_audio(), bit_depth=bit_depth_of(pix_fmt),
                         declared_frames=md.num_frames_from_header,
                         warnings=tuple(self.warnings), colour_primaries=self.colour.primaries,
                         colour_transfer=self.colour.transfer, colour_matrix=self.colour.matrix,
                         colour_range=self.colour.range,
                         tone_mapping=self._tone_mapping,
                         video_stream=md.stream_index)

    # -- reading -------------------------------------------------------------------------
    def batches(self, *, batch_frames: int = 16, start_frame: int = 0,
                stop_frame: int | None = None) -> Iterator[FrameBatch]:
        """Frames ``[start_frame, stop_frame)`` as consecutive batches, in order.

        Args:
            batch_frames: Frames per batch (the last one may be shorter).
            start_frame: First frame; decoding seeks to the keyframe before it.
            stop_frame: One past the last frame (default: end of stream).

        Returns:
            An iterator of `FrameBatch` with ``frames`` uint8 RGB ``[T,3,H,W]`` (on the decode
            device; channels-last in memory, as FFmpeg produces them: call ``.contiguous()``
            if a consumer needs NCHW strides), ``indices`` int64 ``[T]`` and ``pts_seconds``
            float64 ``[T]`` (CPU).

        Raises:
            ValueError: `batch_frames` < 1.
            IndexError: The frame range is outside ``[0, num_frames]`` or empty.
            DecodeError: (while iterating) a frame failed to decode; frames before it were
                yielded.
            JobTimeoutError: (while iterating) a batch took longer than `timeout_s`.
        """
        n = self.info.num_frames
        stop = n if stop_frame is None else int(stop_frame)
        if batch_frames < 1:
            raise ValueError(f"batch_frames must be >= 1, got {batch_frames}")
        if not 0 <= start_frame < stop <= n:
            raise IndexError(f"frame range [{start_frame}, {stop}) is empty or outside the "
                             f"{n} frames of {self.path}")
        if self._tonemap_pending:
            self._switch_to_tonemapped()
        return self._iterate(int(batch_frames), int(start_frame), stop)

    def _switch_to_tonemapped(self) -> None:
        """Decode from here on from the tone-mapped SDR copy (display-oriented already)."""
        copy = tonemapped_copy(self._decode_path, self.colour, timeout_s=self.timeout_s,
                               stream_index=self._stream_in_decode_path())
        self._decode_path, self._flip_dim = copy, 0
        decoder = self._open(self.status.requested_device)
        if int(decoder.metadata.num_frames) != self.info.num_frames:
            raise DecodeError(f"{self.path}: the tone-mapped copy has {decoder.metadata.num_frames} "
                              f"frames, the source {self.info.num_frames}")
        self._decoder = decoder
        self._tonemap_pending = False

    def _iterate(self, batch_frames: int, start: int, stop: int) -> Iterator[FrameBatch]:
        for first in range(start, stop, batch_frames):
            last = min(first + batch_frames, stop)
            batch, failure = self._decode_range(first, last)
            if len(batch):
                yield batch
            if failure is not None:
                bad, why = failure
                before = (f"frames {start}-{bad - 1} ({bad - start} frames) decoded OK before it"
                          if bad > start else "no frame decoded OK before it")
                raise DecodeError(f"{self.path}: frame {bad} of {self.info.num_frames} could "
                                  f"not be decoded ({why}); {before}")
            self._note_fallback()

    def _decode_range(self, first: int, last: int) -> tuple[FrameBatch, tuple[int, str] | None]:
        """Decode ``[first, last)``.

        When the batch call fails or comes back short, the range is decoded again frame by
        frame: the frames before the first one that fails are returned with
        ``(failing index, reason)``; if every frame decodes, there is no failure.
        """
        what = f"decoding frames {first}-{last - 1} of"
        try:
            tc = self._call(lambda: self._decoder.get_frames_in_range(first, last), what)
        except (RuntimeError, ValueError, IndexError):
            tc = None
        if tc is not None and tc.data.shape[0] == last - first:
            return self._batch(tc.data, first, tc.pts_seconds), None
        frames: list[torch.Tensor] = []
        pts: list[float] = []
        failure = None
        for i in range(first, last):
            try:
                frame = self._call(lambda: self._decoder.get_frame_at(i), f"decoding frame {i} of")
            except (RuntimeError, ValueError, IndexError) as exc:
                failure = (i, _clean(exc))
                break
            frames.append(frame.data)
            pts.append(float(frame.pts_seconds))
        if not frames:
            return FrameBatch.empty(self.info.height, self.info.width), failure
        pts_seconds = torch.tensor(pts, dtype=torch.float64)
        return self._batch(torch.stack(frames), first, pts_seconds), failure

    def _batch(self, frames: torch.Tensor, first: int, pts: torch.Tensor) -> FrameBatch:
        if self._flip_dim:  # the display matrix's reflection, after TorchCodec's rotation
            frames = frames.flip(self._flip_dim)
        t = frames.shape[0]
        return FrameBatch(frames, torch.arange(first, first + t, dtype=torch.int64),
                          pts.to(torch.float64).cpu())

    def _note_fallback(self) -> None:
        if self.status.device.startswith("cuda") and not self.status.fallback:
            status: Any = self._decoder.cpu_fallback
            if bool(status):
                self.status = DecodeStatus(self.status.requested_device, "cpu", fallback=True,
                                           reason=str(status))

    def keyframes(self) -> list[int] | None:
        """Indices of the frames decoding can start from (the stream's keyframes), ascending,
        from the open-time scan; None when unknown (frames will come from a converted copy,
        or this TorchCodec does not say)."""
        if self._tonemap_pending or self._decode_path != self.path:
            return None
        try:  # TorchCodec 0.13 exposes the scan's keyframes only privately
            return [int(i) for i in self._decoder._get_key_frame_indices()]
        except (AttributeError, RuntimeError, TypeError):
            return None

    def close(self) -> None:
        """Release the decoder (the source cannot be read afterwards)."""
        self._decoder = None  # type: ignore[assignment]

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_batches(path: str | os.PathLike[str], *, batch_frames: int = 16, start_frame: int = 0,
                 stop_frame: int | None = None, device: str | torch.device = "cpu",
                 num_threads: int = 1, timeout_s: float = DEFAULT_TIMEOUT_S,
                 hdr: str = "tonemap", stream_index: int | None = None) -> Iterator[FrameBatch]:
    """Open `path` and iterate over its frames in order (see `VideoSource.batches`).

    The file is opened before this returns, so a broken file raises here, not on first
    ``next()``.

    Args:
        path: Video file.
        batch_frames: Frames per batch.
        start_frame: First frame (seeks; nothing before it is decoded past its keyframe).
        stop_frame: One past the last frame (default: end of stream).
        device: ``"cpu"`` or ``"cuda[:N]"`` (NVDEC, with CPU fallback).
        num_threads: FFmpeg CPU decoding threads (0: FFmpeg decides).
        timeout_s: Deadline for opening and for each batch.
        hdr: ``"tonemap"`` (default) or ``"keep"`` (see `VideoSource`).
        stream_index: Absolute index of the video stream (None: FFmpeg's best one).

    Returns:
        An iterator of `FrameBatch` (uint8 RGB ``[T,3,H,W]``, ``indices``, ``pts_seconds``).

    Raises:
        DecodeError: Broken input (on open, or while iterating for mid-stream corruption).
        JobTimeoutError: Opening or a batch overran `timeout_s`.
    """
    source = VideoSource(path, device=device, num_threads=num_threads, timeout_s=timeout_s, hdr=hdr,
                         stream_index=stream_index)
    return source.batches(batch_frames=batch_frames, start_frame=start_frame,
                          stop_frame=stop_frame)
