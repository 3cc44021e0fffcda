"""Video I/O: probe and decode (TorchCodec), and incremental, atomic writers.

Decode::

    info = probe("in.mp4")                       # VideoInfo, display orientation
    for batch in iter_batches("in.mp4", batch_frames=16, start_frame=0):
        ...                                      # FrameBatch: uint8 RGB [T,3,H,W]

Write::

    with Mp4Writer("out.mp4", fps=info.fps, audio_from="in.mp4") as w:
        w.write(batch.frames)

The names load on first use, so the torch-free modules of this package (`vdp.io.streams`,
`vdp.io.quick_probe`, `vdp.io.source_facts`) import without torch.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {**dict.fromkeys(["DecodeStatus", "VideoSource", "iter_batches"], "vdp.io.decode"),
          "probe": "vdp.io.probing",
          **dict.fromkeys(["CompositeMp4Writer", "Mp4Writer", "NpyWriter", "NpzWriter", "Png16SequenceWriter",
                           "PngRgbaSequenceWriter", "WebmAlphaWriter", "encode_in_idle_time",
                           "read_webm_alpha", "read_webm_rgba"], "vdp.io.writers")}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vdp.io' has no attribute {name!r}")
