"""Compiled one-pass pixel loops for the depth writers (numba, one core, no GIL).

Quantising a 1080p depth frame to PNG's 16 bits, or colourising it through a table, takes
five or six numpy passes over the frame (scale, round, range check, clip, cast, lookup), each
reading and writing megabytes: ~2.4-3 ms and ~5 ms of CPU per frame, a third of what the
encoders themselves cost. Each function here does its job in one pass, a row at a time in a few
simple loops the compiler vectorises (one loop per pixel was slower on frames not in cache), for
~1.1 ms and ~1.9 ms, with the same float32 arithmetic in the same order as the numpy code it
replaced, so the results are bit for bit the same (no fast-math: no fused multiply-add).

Compiled on first use and cached on disk (``cache=True``: next to this file, or in numba's
user cache when the package folder is read-only).
"""
from __future__ import annotations

import numba
import numpy as np

_JIT = {"cache": True, "nogil": True, "boundscheck": False, "error_model": "numpy"}
_ROUND = np.float32(1.5 * 2 ** 23)  # x + _ROUND - _ROUND rounds float32 |x| < 2**22 half to even
U16_MAX = np.float32(65535)


@numba.njit(**_JIT)
def quantise_u16_sub_rows(depth: np.ndarray, scale: np.float32, rows: np.ndarray) -> int:
    """``rint(depth / scale)`` clipped to 0..65535, stored straight as a 16-bit grayscale PNG's
    image data before deflate: row ``r`` of `rows` is the Sub filter's type byte (1), then each
    big-endian sample's two bytes minus the two of the sample to its left, modulo 256 (the first
    sample's as they are): the bytes `vdp.io.writers.png_encode.png_parts` makes from the uint16
    image, without that image or a separate filter pass (~2 ms less per 1080p frame).

    Args:
        depth: float32 ``[H,W]``.
        scale: float32 value of one step.
        rows: uint8 ``[H, 1 + 2W]`` to fill.

    Returns:
        Values clipped (below 0 or above 65535); NaN stores 0 and is not counted.
    """
    h, w = depth.shape
    q = np.empty(w, np.float32)
    v = np.empty(w, np.int32)
    clipped = 0
    for r in range(h):
        row, dst = depth[r], rows[r]
        for c in range(w):
            q[c] = (row[c] / scale + _ROUND) - _ROUND  # = np.rint below 2**22; larger clip anyway
        for c in range(w):
            clipped += (q[c] < 0) | (q[c] > U16_MAX)
        for c in range(w):
            x = q[c] if q[c] >= 0 else np.float32(0)  # NaN too
            v[c] = np.int32(x if x <= U16_MAX else U16_MAX)
        dst[0] = 1
        dst[1] = np.uint8(v[0] >> 8)
        dst[2] = np.uint8(v[0] & 255)
        for c in range(1, w):
            dst[2 * c + 1] = np.uint8(((v[c] >> 8) - (v[c - 1] >> 8)) & 255)
            dst[2 * c + 2] = np.uint8((v[c] - v[c - 1]) & 255)
    return clipped


@numba.njit(**_JIT)
def _index_row(row: np.ndarray, k: np.float32, b: np.float32, scaled: np.ndarray,
               index: np.ndarray) -> int:
    """`index` = ``int(clip(row * k + b, 0.5, 255.5))``, NaN -> 0 (`scaled`: float32 scratch of
    the row's length). Returns the values outside the range, NaN included."""
    w = row.shape[0]
    for c in range(w):
        scaled[c] = row[c] * k + b
    clipped = 0
    for c in range(w):
        clipped += not (scaled[c] >= 0.5 and scaled[c] <= 255.5)
    for c in range(w):
        s = scaled[c] if scaled[c] >= 0.5 else np.float32(0.5)  # NaN too
        index[c] = np.uint8(s if s <= 255.5 else np.float32(255.5))
    return clipped


@numba.njit(**_JIT)
def colour_planes(values: np.ndarray, k: np.float32, b: np.float32, tables: np.ndarray,
                  out: np.ndarray) -> int:
    """Each value's colour from `tables` at ``int(clip(value * k + b, 0.5, 255.5))``.

    Args:
        values: float32 ``[H,W]``.
        k, b: float32 affine map onto the tables' 0.5..255.5 (`StableRange.affine`).
        tables: uint8 ``[C,256]``, one table per output plane.
        out: uint8 ``[C,H,W]`` to fill.

    Returns:
        Values outside the range, NaN included (NaN takes entry 0).
    """
    h, w = values.shape
    scaled, index = np.empty(w, np.float32), np.empty(w, np.uint8)
    clipped = 0
    for r in range(h):
        clipped += _index_row(values[r], k, b, scaled, index)
        for p in range(tables.shape[0]):
            table, plane = tables[p], out[p, r]
            for c in range(w):
                plane[c] = table[index[c]]
    return clipped


@numba.njit(**_JIT)
def colour_yuv420(values: np.ndarray, k: np.float32, b: np.float32, tables: np.ndarray,
                  y: np.ndarray, u: np.ndarray, v: np.ndarray) -> int:
    """`colour_planes` into 4:2:0 planes: Y from every value, Cb and Cr from the top-left value
    of each 2x2 block.

    Args:
        values: float32 ``[H,W]``, H and W even.
        k, b: As `colour_planes`.
        tables: uint8 ``[3,256]``: Y, Cb, Cr.
        y: uint8 ``[H,W]``; u, v: uint8 ``[H/2,W/2]``.

    Returns:
        Values outside the range, NaN included.
    """
    h, w = values.shape
    scaled, index = np.empty(w, np.float32), np.empty(w, np.uint8)
    ty, tu, tv = tables[0], tables[1], tables[2]
    clipped = 0
    for r in range(h):
        clipped += _index_row(values[r], k, b, scaled, index)
        row = y[r]
        for c in range(w):
            row[c] = ty[index[c]]
        if r % 2 == 0:
            row_u, row_v = u[r // 2], v[r // 2]
            for c in range(w // 2):
                i = index[2 * c]
                row_u[c] = tu[i]
                row_v[c] = tv[i]
    return clipped
