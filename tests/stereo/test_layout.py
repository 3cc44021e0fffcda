"""Side-by-side and top-bottom packing."""
from __future__ import annotations

import pytest
import torch

from vdp.stereo.layout import pack_stereo, packed_size


def views(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    left = torch.full((2, 3, h, w), 10, dtype=torch.uint8)
    right = torch.full((2, 3, h, w), 200, dtype=torch.uint8)
    return left, right


@pytest.mark.parametrize("layout,size", [("sbs_full", (6, 20)), ("sbs_half", (6, 10)),
                                         ("tb_full", (12, 10)), ("tb_half", (6, 10))])
def test_sizes_and_left_first(layout, size):
    left, right = views(6, 10)
    out = pack_stereo(left, right, layout)
    assert tuple(out.shape) == (2, 3, *size) == (2, 3, *packed_size(layout, 6, 10))
    if layout.startswith("sbs"):
        first, second = out[..., : size[1] // 2], out[..., size[1] // 2:]
    else:
        first, second = out[..., : size[0] // 2, :], out[..., size[0] // 2:, :]
    assert first.eq(10).all() and second.eq(200).all()


def test_half_layouts_average_pixel_pairs():
    left = torch.arange(8, dtype=torch.uint8).repeat(1, 3, 2, 1) * 10  # [1,3,2,8]
    out = pack_stereo(left, left, "sbs_half")
    assert out[0, 0, 0, :4].tolist() == [5, 25, 45, 65]


def test_odd_sizes_and_bad_inputs():
    left, right = views(5, 7)
    assert packed_size("sbs_half", 5, 7) == (5, 6)
    assert tuple(pack_stereo(left, right, "tb_half").shape) == (2, 3, 4, 7)
    with pytest.raises(ValueError, match="layout must be one of"):
        packed_size("sbs_quarter", 5, 7)
    with pytest.raises(ValueError, match="one shape"):
        pack_stereo(left, right[..., :6], "sbs_full")
