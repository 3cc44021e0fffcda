"""Side-by-side and top-bottom packing."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

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


@pytest.mark.parametrize("layout", ["sbs_half", "tb_half"])
@pytest.mark.parametrize("size", [(6, 10), (5, 7)])
def test_half_layouts_equal_area_interpolation_rounded_bit_for_bit(layout, size):
    """Even sizes take the integer pair means, odd ones area interpolation: the same pixels."""
    g = torch.Generator().manual_seed(1)
    left, right = (torch.randint(0, 256, (3, 3, *size), generator=g, dtype=torch.uint8) for _ in range(2))
    ph, pw = packed_size(layout, *size)
    vh, vw = (ph, pw // 2) if layout == "sbs_half" else (ph // 2, pw)
    expected = [F.interpolate(v.float(), size=(vh, vw), mode="area").round().to(torch.uint8)
                for v in (left, right)]
    expected = torch.cat(expected, dim=3 if layout == "sbs_half" else 2)
    channels_last = left.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)  # as decoded
    assert torch.equal(pack_stereo(left, right, layout), expected)
    assert torch.equal(pack_stereo(channels_last, right, layout), expected)
