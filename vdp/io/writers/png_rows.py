"""PNG image data made in one compiled pass (numba, no GIL): what `png_encode.filtered_png_parts`
compresses, straight from the frames a writer is given.

An RGBA PNG of the matte's foreground and alpha took three passes over ~8 MB per 1080p frame
(interleaving the planes into RGBA pixels, a copy of them with each row's filter byte, the Sub
filter) in fresh memory: ~10 ms of CPU beside ISA-L's ~25. Here one pass writes each filtered
row from the planes, into the writer's reused buffers.
"""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, boundscheck=False)
def rgba_sub_rows(rgb: np.ndarray, alpha: np.ndarray, rows: np.ndarray) -> None:
    """RGB planes and their alpha as an RGBA PNG's Sub-filtered rows: row ``r`` of `rows` is the
    filter's type byte (1), then each pixel's R, G, B, A minus the pixel's to its left, modulo
    256 (the first pixel's as they are); the bytes `png_encode.png_parts` makes from the
    interleaved ``[H,W,4]`` image.

    Args:
        rgb: uint8 ``[3,H,W]``, any strides (channels-last frames are read in place).
        alpha: uint8 ``[H,W]``.
        rows: uint8 ``[H, 1 + 4W]`` to fill.
    """
    _, h, w = rgb.shape
    for r in range(h):
        dst = rows[r]
        dst[0] = 1
        for k in range(3):
            plane = rgb[k, r]
            dst[1 + k] = plane[0]
            for c in range(1, w):
                dst[1 + 4 * c + k] = np.uint8((np.int32(plane[c]) - np.int32(plane[c - 1])) & 255)
        a = alpha[r]
        dst[4] = a[0]
        for c in range(1, w):
            dst[4 + 4 * c] = np.uint8((np.int32(a[c]) - np.int32(a[c - 1])) & 255)
