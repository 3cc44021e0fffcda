"""HDR (PQ / HDR10 and HLG) sources tone-mapped to SDR BT.709 before decoding.

The models and every SDR output want display-referred BT.709 frames; decoding a PQ or HLG
stream straight to 8-bit RGB gives washed-out, flat grey frames. ffmpeg makes a tone-mapped copy
once (zimg for the transfer and gamut conversions, ffmpeg's ``tonemap`` filter for the curve),
kept as lossless FFV1 planar RGB in a cache, and the source decodes from there.

The operator (`TONEMAP_OPERATOR`): linear light with 100 cd/m2 as reference white (``zscale
npl=100``), BT.2020 to BT.709 primaries, John Hable's filmic curve (``tonemap=hable``: highlights
rolled off smoothly, mid-tones kept; ``desat=0``: no extra desaturation), BT.709 transfer.
"""
from __future__ import annotations

import os

from vdp.errors import DecodeError
from vdp.io._ffmpeg import run_ffmpeg
from vdp.io._streams import cached_copy
from vdp.io.colour import Colour

#: The name report.json carries for the operator applied to HDR sources.
TONEMAP_OPERATOR = "hable (ffmpeg zscale npl=100 + tonemap=hable, BT.2020 -> BT.709)"
_FILTER = ("zscale=transfer=linear:npl=100,format=gbrpf32le,zscale=primaries=bt709,"
           "tonemap=tonemap=hable:desat=0,zscale=transfer=bt709:matrix=bt709:range=full,"
           "format=gbrp")


def tonemapped_copy(path: str, source: Colour, *, timeout_s: float, stream_index: int | None = None) -> str:
    """A lossless SDR BT.709 copy (FFV1 planar RGB, Matroska) of the HDR video stream
    `stream_index` (absolute; None: the first video stream) of `path`, made once and cached
    (keyed by the file's absolute path, size, modification time, the stream and the operator).

    The copy has the source's frames and timestamps (variable rates kept), in display
    orientation (ffmpeg applies the display matrix, rotation and reflection).

    Raises:
        ValueError: `source` is not HDR.
        DecodeError: ffmpeg could not convert the stream.
    """
    if not source.is_hdr:
        raise ValueError(f"{path}: not an HDR source (transfer {source.transfer or 'unknown'})")
    stream = "0:v:0" if stream_index is None else f"0:{int(stream_index)}"
    target = cached_copy(path, salt=f"|{stream}|{_FILTER}", suffix=".sdr.mkv")
    if not target.is_file():
        tmp = target.with_name(f"{target.stem}.{os.getpid()}.{id(target)}.tmp.mkv")
        try:
            run_ffmpeg(["-y", "-i", path, "-map", stream, "-an", "-sn", "-fps_mode", "passthrough",
                        "-vf", _FILTER, "-c:v", "ffv1", "-level", "3", "-threads", "0",
                        "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "rgb",
                        "-color_range", "pc", str(tmp)],
                       timeout_s=timeout_s, what=f"tone-mapping HDR ({source.transfer}) {path} to SDR",
                       error=DecodeError)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()
    return str(target)
