"""Video I/O: probe and decode (TorchCodec), and incremental, atomic writers.

Decode::

    info = probe("in.mp4")                       # VideoInfo, display orientation
    for batch in iter_batches("in.mp4", batch_frames=16, start_frame=0):
        ...                                      # FrameBatch: uint8 RGB [T,3,H,W]

Write::

    with Mp4Writer("out.mp4", fps=info.fps, audio_from="in.mp4") as w:
        w.write(batch.frames)
"""
from vdp.io.decode import DecodeStatus, VideoSource, iter_batches, probe
from vdp.io.writers import (Mp4Writer, NpyWriter, NpzWriter, Png16SequenceWriter,
                            PngRgbaSequenceWriter, WebmAlphaWriter, encode_in_idle_time,
                            read_webm_alpha, read_webm_rgba)

__all__ = ["DecodeStatus", "Mp4Writer", "NpyWriter", "NpzWriter", "Png16SequenceWriter",
           "PngRgbaSequenceWriter", "VideoSource", "WebmAlphaWriter", "encode_in_idle_time",
           "iter_batches", "probe", "read_webm_alpha", "read_webm_rgba"]
