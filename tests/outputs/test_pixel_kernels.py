"""The compiled pixel loops give exactly what the numpy formulas give, edge values included."""
from __future__ import annotations

import numpy as np

from vdp.io.writers.png_encode import encode_png, filtered_png_parts
from vdp.outputs.pixel_kernels import colour_planes, colour_yuv420, quantise_u16_sub_rows

EDGES = [np.nan, -np.inf, np.inf, 1e30, -1e30, -0.0, 0.0, -0.004, -0.006, 0.005, 0.015, 0.025,
         655.345, 655.355, 655.365, 4.2e4, 1e5, 3e5]


def depth_with_edges(h: int, w: int) -> np.ndarray:
    depth = np.random.default_rng(4).uniform(-5.0, 700.0, (h, w)).astype(np.float32)
    depth[0, :len(EDGES)] = EDGES
    depth[1, :w] = (np.arange(w) + 0.5) * np.float32(0.01)  # exact halves of a step: ties
    return depth


def sub_filtered(image: np.ndarray) -> np.ndarray:
    """PNG's Sub filter of a big-endian uint16 image, written out with numpy."""
    rows = image.view(np.uint8).reshape(image.shape[0], -1).astype(np.int32)
    out = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
    out[:, 0] = 1
    out[:, 1:3] = rows[:, :2]
    out[:, 3:] = (rows[:, 2:] - rows[:, :-2]) % 256
    return out


def test_quantise_is_numpys_rint_clip_big_endian_as_sub_filtered_png_rows() -> None:
    depth, scale = depth_with_edges(6, 40), np.float32(0.01)
    rows = np.empty((6, 81), np.uint8)
    clipped = quantise_u16_sub_rows(depth, scale, rows)
    q = np.rint(depth / scale)
    expected = np.clip(np.nan_to_num(q, nan=0.0), 0, 65535).astype(">u2")
    assert np.array_equal(rows, sub_filtered(expected))
    assert expected[0, 0] == 0 and expected[0, 2] == 65535  # NaN -> 0, inf -> the top
    assert clipped == np.count_nonzero((q < 0) | (q > 65535)) > 0  # NaN not counted
    # the rows make the very file the encoder makes from the uint16 image
    assert b"".join(filtered_png_parts(rows, 40)) == encode_png(expected)


def affine(low: float, high: float) -> tuple[np.float32, np.float32]:
    k = 255 / (high - low)
    return np.float32(k), np.float32(0.5 - low * k)


def expected_index(values: np.ndarray, k: np.float32, b: np.float32) -> tuple[np.ndarray, int]:
    s = values * k + b
    outside = np.count_nonzero(~((s >= 0.5) & (s <= 255.5)))
    return np.clip(np.nan_to_num(s, nan=0.5), 0.5, 255.5).astype(np.int32), outside


def test_colour_planes_look_up_each_plane_at_the_truncated_scaled_value() -> None:
    values = depth_with_edges(5, 33)  # odd sizes
    k, b = affine(-2.0, 600.0)
    tables = np.random.default_rng(5).integers(0, 256, (3, 256), dtype=np.uint8)
    out = np.empty((3, 5, 33), np.uint8)
    clipped = colour_planes(values, k, b, tables, out)
    index, outside = expected_index(values, k, b)
    assert all(np.array_equal(out[p], tables[p][index]) for p in range(3))
    assert out[0, 0, 0] == tables[0, 0] and clipped == outside > 0  # NaN: entry 0, counted


def test_colour_yuv420_takes_chroma_from_each_blocks_top_left_value() -> None:
    values = depth_with_edges(6, 40)
    k, b = affine(0.0, 500.0)
    tables = np.random.default_rng(6).integers(0, 256, (3, 256), dtype=np.uint8)
    y, u, v = np.empty((6, 40), np.uint8), np.empty((3, 20), np.uint8), np.empty((3, 20), np.uint8)
    clipped = colour_yuv420(values, k, b, tables, y, u, v)
    index, outside = expected_index(values, k, b)
    assert np.array_equal(y, tables[0][index]) and clipped == outside
    assert np.array_equal(u, tables[1][index[::2, ::2]]) and np.array_equal(v, tables[2][index[::2, ::2]])
