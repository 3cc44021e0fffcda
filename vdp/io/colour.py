"""Colour of video streams: what a source says about itself, and what every encoded output
is converted to and tagged with.

Names are FFmpeg's (``bt709``, ``bt2020``, ``smpte2084``, ``arib-std-b67``, ``bt2020nc``; range
``tv`` = limited, ``pc`` = full). Outputs convert RGB to YUV with swscale told the matrix and range
explicitly (`rgb_to_yuv_filter`); FFmpeg's default RGB->YUV path (and TorchCodec's encoder)
uses BT.601 whatever the tags say, which shifts colours in every player that assumes BT.709 for HD.

Decoding needs nothing here: TorchCodec converts YUV to RGB with the stream's own matrix and
range (measured: a BT.709 limited or full range source decodes within ~1 level of ffmpeg's own
conversion; an untagged stream is taken as BT.601, as ffmpeg does).
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from vdp.io._ffmpeg import ffmpeg_exe

#: Transfer functions of HDR video (PQ / HDR10, and HLG).
HDR_TRANSFERS = ("smpte2084", "arib-std-b67")
#: FFmpeg matrix names -> the names of swscale's ``out_color_matrix``.
_SWS_MATRIX = {"bt2020nc": "bt2020", "bt2020c": "bt2020", "bt470bg": "bt601", "smpte170m": "bt601"}


@dataclass(frozen=True)
class Colour:
    """A stream's colour description (empty strings: the stream does not say).

    Attributes:
        primaries: e.g. ``bt709``, ``bt2020``.
        transfer: e.g. ``bt709``, ``smpte2084`` (PQ), ``arib-std-b67`` (HLG).
        matrix: YUV matrix, e.g. ``bt709``, ``bt2020nc``.
        range: ``tv`` (limited) or ``pc`` (full).
    """

    primaries: str = ""
    transfer: str = ""
    matrix: str = ""
    range: str = ""

    @property
    def is_hdr(self) -> bool:
        """True for PQ (HDR10) and HLG transfers."""
        return self.transfer in HDR_TRANSFERS

    def to_dict(self) -> dict[str, str]:
        return {"primaries": self.primaries, "transfer": self.transfer, "matrix": self.matrix,
                "range": self.range}


#: What every SDR output is: BT.709 primaries, transfer and matrix, limited range.
SDR_BT709 = Colour("bt709", "bt709", "bt709", "tv")


def hdr_output_colour(source: Colour) -> Colour:
    """The colour an HDR-keeping output is tagged with: the source's transfer, BT.2020
    primaries and non-constant-luminance matrix, limited range."""
    return Colour("bt2020", source.transfer, "bt2020nc", "tv")


def rgb_to_yuv_filter(colour: Colour, pixel_format: str) -> str:
    """The ``-vf`` chain that turns RGB (packed or planar, with or without alpha) into
    `pixel_format` with `colour`'s matrix and range, tagging every colour property.

    The RGB is taken as already in `colour`'s primaries and transfer (no gamut or transfer
    conversion: only the matrix and range are applied). swscale does it, told the matrix and
    range explicitly. 4:2:0 chroma is subsampled with its ``fast_bilinear`` filter (measured on
    colour bars: the closest to the source after a player's chroma upsampling, 0.8 levels mean
    against 1.2 for the default bicubic and 2.9 for zimg's bilinear; zimg also mishandles
    alpha); 4:4:4 keeps swscale's default flags (``fast_bilinear`` there is 4.3 levels off).
    """
    matrix = _SWS_MATRIX.get(colour.matrix, colour.matrix)
    flags = ":flags=fast_bilinear" if "420" in pixel_format else ""
    return (f"scale=out_color_matrix={matrix}:out_range={colour.range}{flags},"
            f"format={pixel_format},{yuv_tags_filter(colour)}")


def yuv_tags_filter(colour: Colour) -> str:
    """The ``-vf`` for YUV frames already in `colour`: only tags them (no pixel is changed)."""
    return (f"setparams=color_primaries={colour.primaries}:color_trc={colour.transfer}"
            f":colorspace={colour.matrix}:range={colour.range}")


def tag_args(colour: Colour) -> list[str]:
    """Encoder options that write `colour` into the stream (VUI / container colour boxes)."""
    return ["-color_primaries", colour.primaries, "-color_trc", colour.transfer,
            "-colorspace", colour.matrix, "-color_range", colour.range]


# "yuv420p10le(tv, bt2020nc/bt2020/smpte2084, progressive)" or "yuv420p(tv, bt709)" or "(pc)"
_STREAM = re.compile(r"Stream #\d+:(\d+)[^:\n]*: Video: [^\n]*?, (\w+)\(([^)]*)\)")
_RANGES = ("tv", "pc")


def parse_colour(ffmpeg_stderr: str, stream_index: int | None = None) -> Colour:
    """A video stream's colour from ``ffmpeg -i``'s stream line (empty when unsaid): the stream
    with absolute index `stream_index`, or the first video stream."""
    m = next((m for m in _STREAM.finditer(ffmpeg_stderr)
              if stream_index is None or int(m.group(1)) == stream_index), None)
    if m is None:
        return Colour()
    parts = [p.strip() for p in m.group(3).split(",")]
    rng = parts.pop(0) if parts and parts[0] in _RANGES else ""
    space = next((p for p in parts if p not in ("progressive", "top first", "bottom first",
                                                  "top coded first (swapped)",
                                                  "bottom coded first (swapped)")
                  and not p.startswith(("left", "center", "topleft", "top", "bottomleft",
                                        "bottom"))), "")
    if not space:
        return Colour(range=rng)
    names = space.split("/")
    if len(names) == 3:  # matrix/primaries/transfer
        return Colour(names[1].replace("unknown", ""), names[2].replace("unknown", ""),
                      names[0].replace("unknown", ""), rng)
    return Colour(names[0], names[0], names[0], rng)  # all three the same


def source_colour(path: str, *, timeout_s: float = 60.0, stream_index: int | None = None) -> Colour:
    """The colour a video stream of `path` declares (``ffmpeg -i``, no decoding): the stream
    with absolute index `stream_index`, or the first video stream; an empty `Colour` when
    ffmpeg cannot read it (the decoder reports that properly)."""
    try:
        proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", path],
                              capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return Colour()
    return parse_colour(proc.stderr, stream_index)
