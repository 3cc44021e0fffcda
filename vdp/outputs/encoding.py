"""Writers opened with an output spec's encoder settings (preset, encoder, threads, VP9, PNG)."""
from __future__ import annotations

import os

from vdp.io import Mp4Writer, WebmAlphaWriter
from vdp.spec import OutputSpec


def mp4_writer(spec: OutputSpec, path: str | os.PathLike[str], *, fps: float,
               writer: type[Mp4Writer] = Mp4Writer, **kwargs) -> Mp4Writer:
    """An `Mp4Writer` (or the subclass `writer`) with the spec's crf, preset, encoder and
    threads (kwargs: the rest, e.g. codec, pixel_format, audio_from)."""
    return writer(path, fps=fps, crf=spec.crf, preset=spec.preset, encoder=spec.encoder,
                  threads=spec.threads, **kwargs)


def webm_writer(spec: OutputSpec, path: str | os.PathLike[str], *, fps: float) -> WebmAlphaWriter:
    """A `WebmAlphaWriter` with the spec's VP9 deadline and speed."""
    return WebmAlphaWriter(path, fps=fps, speed=spec.vp9_speed, deadline=spec.vp9_deadline)
