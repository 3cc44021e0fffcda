"""DIBR warp: z-ordering, background hole filling, sub-pixel accuracy, parallax mapping."""
from __future__ import annotations

import pytest
import torch

from vdp.stereo.dibr import (dilate_nearness, forward_zbuffer, naive_forward_warp, stereo_pair,
                             warp_view)

H, W = 8, 40
RED, BLUE = torch.tensor([1.0, 0, 0]), torch.tensor([0, 0, 1.0])


def square_scene() -> tuple[torch.Tensor, torch.Tensor]:
    """A red near square (columns 16..23, nearness 1) on a blue far background (nearness 0)."""
    img = BLUE.view(3, 1, 1).expand(3, H, W).clone()
    img[:, :, 16:24] = RED.view(3, 1, 1)
    near = torch.zeros(H, W)
    near[:, 16:24] = 1.0
    return img[None], near[None]


def test_near_pixels_win_and_holes_take_the_background():
    img, near = square_scene()
    # the square moves 5 px right, the background stays
    out, holes = warp_view(img, near, scale=5.0, offset=0.0)
    row = out[0, :, 4]
    assert torch.equal(row[:, 21:29], RED.view(3, 1).expand(3, 8))  # square moved, on top
    assert torch.equal(row[:, 29:], BLUE.view(3, 1).expand(3, W - 29))
    # columns 16..20 were uncovered: holes, filled with background, not smeared red
    assert holes[0, 4, 16:20].all() and not holes[0, 4, 21:29].any()
    assert torch.equal(row[:, 16:21], BLUE.view(3, 1).expand(3, 5))


def test_background_side_is_chosen_by_depth_not_by_direction():
    img, near = square_scene()
    out, holes = warp_view(img, near, scale=-5.0, offset=0.0)  # square moves left
    row = out[0, :, 4]
    assert torch.equal(row[:, 11:19], RED.view(3, 1).expand(3, 8))
    assert holes[0, 4, 20:24].all()
    assert torch.equal(row[:, 19:24], BLUE.view(3, 1).expand(3, 5))


def test_naive_warp_lets_the_background_overwrite_the_foreground():
    img, near = square_scene()
    # square moves 5 px right: the background pixels 24..28 come later in scan order and
    # land on it; the hole left of it is filled from the left, whatever its depth
    out, _ = naive_forward_warp(img, 5.0 * near)
    assert torch.equal(out[0, :, 4, 24:29], BLUE.view(3, 1).expand(3, 5))
    ours, _ = warp_view(img, near, scale=5.0, offset=0.0)
    assert torch.equal(ours[0, :, 4, 21:29], RED.view(3, 1).expand(3, 8))
    # moving left, the naive hole filling smears the square into the gap it leaves
    out, _ = naive_forward_warp(img, -5.0 * near)
    assert torch.equal(out[0, :, 4, 19:24], RED.view(3, 1).expand(3, 5))


def test_zero_shift_is_identity_and_subpixel_shift_is_exact_on_a_ramp():
    ramp = torch.linspace(0, 1, W).expand(1, 3, H, W).clone()
    near = torch.rand(1, H, W)
    same, holes = warp_view(ramp, near, 0.0, 0.0)
    assert torch.equal(same, ramp) and not holes.any()
    half, holes = warp_view(ramp, torch.zeros(1, H, W), 0.0, 0.5)  # everything 0.5 px right
    step = float(ramp[0, 0, 0, 1])
    assert torch.allclose(half[0, :, :, 1:], ramp[0, :, :, 1:] - 0.5 * step, atol=1e-6)
    assert not holes.any()  # column 0 is within one pixel of source 0 (at 0.5)


def test_zbuffer_covers_both_neighbours_of_a_fractional_position():
    near = torch.zeros(1, 1, 6)
    near[0, 0, 2] = 1.0
    win = forward_zbuffer(near, scale=0.5, offset=0.0)  # pixel 2 lands at 2.5
    assert win[0, 0, 2] == 1.0 and win[0, 0, 3] == 1.0 and win[0, 0, 1] == 0.0


def test_dilation_grows_near_regions():
    _, near = square_scene()
    near[:, 0] = 0  # the square now ends below row 0
    grown = dilate_nearness(near, 2)
    assert grown[0, 4, 14:26].eq(1).all() and grown[0, 4, :14].eq(0).all()
    assert grown[0, 0].eq(0).all()  # sideways only: parallax is horizontal
    assert torch.equal(dilate_nearness(near, 0), near)
    with pytest.raises(ValueError, match="radius_px"):
        dilate_nearness(near, -1)


def test_stereo_pair_parallax_follows_divergence_and_convergence():
    img, near = square_scene()
    frames = (img * 255).to(torch.uint8)
    # W=40, divergence 20 % -> D = 8 px; convergence 1: the far background at the screen
    views = stereo_pair(frames, near, divergence_pct=20.0, convergence=1.0)
    assert views.shape == (1, 2, 3, H, W) and views.dtype == torch.uint8
    left, right = views[0, 0, 0, 4], views[0, 1, 0, 4]  # red channel: where the square is
    assert torch.nonzero(left > 128).flatten().tolist() == list(range(20, 28))  # +D/2
    assert torch.nonzero(right > 128).flatten().tolist() == list(range(12, 20))  # -D/2
    # convergence 0: the square (nearest) at the screen, the background moves instead
    views = stereo_pair(frames, near, divergence_pct=20.0, convergence=0.0)
    assert torch.nonzero(views[0, 0, 0, 4] > 128).flatten().tolist() == list(range(16, 24))
    assert torch.nonzero(views[0, 1, 0, 4] > 128).flatten().tolist() == list(range(16, 24))


def test_ipd_offset_moves_the_whole_scene_by_its_parallax():
    img, near = square_scene()
    frames = (img * 255).to(torch.uint8)
    # W=40: divergence 20 % -> D = 8 px, IPD offset 10 % -> P = 4 px more parallax everywhere
    views = stereo_pair(frames, near, divergence_pct=20.0, convergence=1.0, ipd_offset_pct=10.0)
    assert torch.nonzero(views[0, 0, 0, 4] > 128).flatten().tolist() == list(range(22, 30))  # +(D+P)/2
    assert torch.nonzero(views[0, 1, 0, 4] > 128).flatten().tolist() == list(range(10, 18))  # -(D+P)/2
    views = stereo_pair(frames, near, divergence_pct=20.0, convergence=1.0, ipd_offset_pct=-10.0)
    assert torch.nonzero(views[0, 0, 0, 4] > 128).flatten().tolist() == list(range(18, 26))
    assert torch.nonzero(views[0, 1, 0, 4] > 128).flatten().tolist() == list(range(14, 22))
    # 0 is the rendering without an offset, bit for bit
    plain = torch.stack([warp_view(frames, near, s * 4.0, -s * 4.0 * 0.5)[0] for s in (1.0, -1.0)], 1)
    assert torch.equal(stereo_pair(frames, near, divergence_pct=20.0, convergence=0.5, ipd_offset_pct=0.0),
                       plain)


def test_bad_inputs_are_named():
    img, near = square_scene()
    with pytest.raises(ValueError, match="image must be"):
        warp_view(img[:, :, :4], near, 1.0, 0.0)
    with pytest.raises(ValueError, match="per-frame value"):
        warp_view(img, near, torch.ones(3), 0.0)
    with pytest.raises(ValueError, match="frames must be uint8"):
        stereo_pair(img, near, divergence_pct=2, convergence=0.5)
    with pytest.raises(ValueError, match="convergence"):
        stereo_pair((img * 255).byte(), near, divergence_pct=2, convergence=1.5)
