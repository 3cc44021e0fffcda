"""Writers opened with an output spec's encoder settings (preset, encoder, threads, VP9, PNG)."""
from __future__ import annotations

import os

from vdp.io import Mp4Writer, WebmAlphaWriter
from vdp.io.colour import Colour, hdr_output_colour
from vdp.spec import OutputSpec
from vdp.types import VideoInfo


def kept_hdr(info: VideoInfo) -> Colour | None:
    """The colour of HDR outputs when `info`'s frames are an HDR signal decoded as it is (the
    job's ``hdr: keep``), else None (SDR BT.709 outputs)."""
    source = Colour(info.colour_primaries, info.colour_transfer, info.colour_matrix, info.colour_range)
    return hdr_output_colour(source) if source.is_hdr and not info.tone_mapping else None


def mp4_writer(spec: OutputSpec, path: str | os.PathLike[str], *, fps: float,
               writer: type[Mp4Writer] = Mp4Writer, pixels_of: VideoInfo | None = None,
               **kwargs) -> Mp4Writer:
    """An `Mp4Writer` (or the subclass `writer`) with the spec's crf, preset, encoder and
    threads (kwargs: the rest, e.g. codec, pixel_format, audio_from).

    `pixels_of`: the source whose pixels the frames carry (outputs showing the video itself);
    when it is a kept HDR signal (`kept_hdr`), the MP4 is 10-bit HEVC tagged with its transfer.
    """
    hdr = None if pixels_of is None else kept_hdr(pixels_of)
    if hdr is not None:
        kwargs.update(colour=hdr, bit_depth=10, codec="hevc")
    return writer(path, fps=fps, crf=spec.crf, preset=spec.preset, encoder=spec.encoder,
                  threads=spec.threads, **kwargs)


def webm_writer(spec: OutputSpec, path: str | os.PathLike[str], *, fps: float) -> WebmAlphaWriter:
    """A `WebmAlphaWriter` with the spec's VP9 deadline and speed."""
    return WebmAlphaWriter(path, fps=fps, speed=spec.vp9_speed, deadline=spec.vp9_deadline)
