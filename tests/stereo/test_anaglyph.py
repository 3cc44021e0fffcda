"""Dubois red-cyan anaglyph."""
from __future__ import annotations

import pytest
import torch

from vdp.stereo.anaglyph import (DUBOIS_RED_CYAN_LEFT, DUBOIS_RED_CYAN_RIGHT, anaglyph_dubois,
                                 anaglyph_float, linear_to_srgb, srgb_to_linear)


def full(value: tuple[int, int, int]) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.uint8).view(1, 3, 1, 1).expand(1, 3, 4, 4).contiguous()


def test_white_stays_white_and_black_stays_black():
    white = anaglyph_dubois(full((255, 255, 255)), full((255, 255, 255)))
    assert (white.int() - 255).abs().max() <= 1
    assert anaglyph_dubois(full((0, 0, 0)), full((0, 0, 0))).eq(0).all()


def test_left_view_goes_to_red_and_right_view_to_cyan():
    grey, black = full((180, 180, 180)), full((0, 0, 0))
    left_only = anaglyph_dubois(grey, black)[0, :, 0, 0].tolist()
    right_only = anaglyph_dubois(black, grey)[0, :, 0, 0].tolist()
    assert left_only[0] > 150 and left_only[1] == 0 and left_only[2] == 0
    assert right_only[0] == 0 and right_only[1] > 150 and right_only[2] > 150


def test_matrices_and_transfer_function():
    rows = torch.tensor(DUBOIS_RED_CYAN_LEFT) + torch.tensor(DUBOIS_RED_CYAN_RIGHT)
    assert torch.allclose(rows.sum(1), torch.ones(3), atol=2e-3)  # white -> white
    x = torch.linspace(0, 1, 101)
    assert torch.allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-5)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="uint8"):
        anaglyph_dubois(full((1, 2, 3)).float(), full((1, 2, 3)))


def test_the_table_path_is_within_one_level_of_the_formula_in_any_memory_layout():
    g = torch.Generator().manual_seed(0)
    left, right = (torch.randint(0, 256, (2, 3, 48, 64), generator=g, dtype=torch.uint8) for _ in range(2))
    fast, exact = anaglyph_dubois(left, right).int(), anaglyph_float(left, right).int()
    assert (fast - exact).abs().max() <= 1 and (fast != exact).float().mean() < 0.01
    channels_last = left.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)  # as decoded
    assert torch.equal(anaglyph_dubois(channels_last, right), anaglyph_dubois(left, right))
