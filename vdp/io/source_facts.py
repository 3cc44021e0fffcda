"""What a source's metadata means, decided once for both probes: the TorchCodec one
(`vdp.io.probing`, through `vdp.io.decode`) and the one without torch (`vdp.io.quick_probe`).

No torch here: `vdp probe` imports this without the decoder.
"""
from __future__ import annotations

import re

from vdp.io._streams import timestamp_rate
from vdp.io.tonemap import TONEMAP_OPERATOR

DEFAULT_TIMEOUT_S = 120.0
MAX_PLAUSIBLE_FPS = 480.0
HDR_MODES = ("tonemap", "keep")


def bit_depth_of(pixel_format: str) -> int:
    """Bits per component of an FFmpeg pixel format name (8 when the name says nothing else).

    Args:
        pixel_format: e.g. ``yuv420p``, ``yuv420p10le``, ``p010le``, ``gray16le``, ``rgb48le``.

    Returns:
        Bits per component.
    """
    if re.search(r"(?:rgb|bgr)a?(48|64)", pixel_format):
        return 16
    if m := re.search(r"(?:p0?|gray)(\d+)(?:le|be)?$", pixel_format):
        return int(m.group(1))
    return 8


def frame_rate(path: str, name: str, scan: float, header: float, *, stream_index: int | None,
               timeout_s: float) -> tuple[float, str | None]:
    """The stream's frame rate and a warning (None when there is nothing to say).

    The scanned average (frames / duration) when the container declares an average rate and the
    scan is plausible (a declared rate that differs means a variable rate: the average is kept);
    otherwise the rate from the packet timestamps (`timestamp_rate`); frames that all share one
    timestamp get the nominal rate and a warning.
    """
    if 0 < scan <= MAX_PLAUSIBLE_FPS and header:
        return scan, None
    rate, nominal = timestamp_rate(path, timeout_s=timeout_s, stream_index=stream_index)
    if rate:
        return rate, None
    fallback = nominal or (header if 0 < header <= MAX_PLAUSIBLE_FPS else 0.0) or 25.0
    return fallback, f"{name}: the frames share one timestamp; using the nominal rate {fallback:g} fps"


def short_count_warning(name: str, declared: int | None, decoded: int) -> str | None:
    """The warning for a container that declares more frames than decode (None otherwise)."""
    if declared is None or decoded >= declared:
        return None
    return (f"{name}: the container declares {declared} frames but {decoded} decode (declared "
            f"{declared}, decoded {decoded}); using the {decoded} decoded frames")


def tone_mapping_of(name: str, transfer: str, is_hdr: bool, hdr: str) -> tuple[str, str | None]:
    """The operator an HDR source is tone-mapped with ("" when it is not) and the warning."""
    if not (is_hdr and hdr == "tonemap"):
        return "", None
    return TONEMAP_OPERATOR, (f"{name}: HDR source (transfer {transfer}) tone-mapped to SDR BT.709 "
                              f"with {TONEMAP_OPERATOR}")
