"""View synthesis judged against true stereo pairs of rendered scenes (see scenes.py).

From one view and its true depth, the other view is synthesised and compared with the true
one on the pixels both cameras see; our warp must beat the naive forward warp (no depth
ordering, no background filling) in both directions. The stage's output disparity, measured
from its pixels, must equal the requested divergence within 5 %.
"""
from __future__ import annotations

import pytest
import torch

from tests.stereo.scenes import (StereoScene, interior, region_disparity, render_scene,
                                 synthesise)
from vdp.spec import StereoSpec
from vdp.stages.stereo import StereoStage
from vdp.types import FrameBatch, VideoInfo

SIZE = (240, 320)


@pytest.fixture(scope="module")
def scenes() -> list[StereoScene]:
    return [render_scene(SIZE[1], SIZE[0], seed=s) for s in (0, 1)]


@pytest.mark.parametrize("direction", ["L->R", "R->L"])
def test_synthesised_view_beats_naive_forward_warp(scenes, direction):
    for i, scene in enumerate(scenes):
        m = synthesise(scene, direction)
        print(f"scene {i} {direction}: PSNR {m['psnr']:.2f} dB vs naive {m['naive_psnr']:.2f} dB, "
              f"SSIM {m['ssim']:.4f} vs naive {m['naive_ssim']:.4f}, holes {m['holes']:.3%} "
              f"(not co-visible {m['occluded']:.3%})")
        assert m["psnr"] > m["naive_psnr"] + 1.0
        assert m["ssim"] > m["naive_ssim"]
        assert m["psnr"] > 35.0 and m["ssim"] > 0.97
        assert m["holes"] < 0.05


def test_edge_dilation_repairs_soft_depth_edges(scenes):
    """Network depth is soft at object borders; the default dilation pulls edges back."""
    g = torch.exp(-((torch.arange(9) - 4.0) ** 2) / (2 * 2.0 ** 2))
    kernel = (g[:, None] * g[None, :] / g.sum() ** 2)[None, None]
    for i, scene in enumerate(scenes):
        soft = 1 / torch.nn.functional.conv2d(
            torch.nn.functional.pad(1 / scene.depth_left[None, None], (4, 4, 4, 4), mode="replicate"),
            kernel)[0, 0]
        blurred = StereoScene(**{**scene.__dict__, "depth_left": soft})
        sharp = synthesise(blurred, "L->R", edge_dilation_px=0)["psnr"]
        dilated = synthesise(blurred, "L->R", edge_dilation_px=StereoSpec().edge_dilation)["psnr"]
        print(f"scene {i}, depth blurred (sigma 2 px): PSNR {sharp:.2f} dB without dilation, "
              f"{dilated:.2f} dB with the default {StereoSpec().edge_dilation} px")
        assert dilated > sharp + 1.0


@pytest.mark.parametrize("divergence,convergence", [(2.0, 0.5), (3.5, 0.2)])
def test_output_disparity_matches_the_requested_divergence(scenes, divergence, convergence):
    scene = scenes[0]
    stage = StereoStage(StereoSpec(divergence=divergence, convergence=convergence, edge_dilation=2,
                                   lookahead_frames=2), depth_kind="metric")
    stage.setup("cpu")
    state = stage.init_state(VideoInfo("scene", 2, 30.0, 2 / 30, SIZE[1], SIZE[0], "raw"))
    frames = (scene.left * 255).round().to(torch.uint8)[None].repeat(2, 1, 1, 1)
    batch = FrameBatch(frames, torch.arange(2), torch.arange(2) / 30.0,
                       {"depth": scene.depth_left[None].repeat(2, 1, 1)})
    out, state = stage.process(batch, state)
    out = FrameBatch.concat([out, stage.flush(state)])
    left, right = (out.layers["stereo"][1].float() / 255).unbind(0)
    d_px = divergence / 100 * SIZE[1]
    margin = int(d_px) + 4
    near = interior(scene.depth_left <= scene.z_near_m + 1e-3, margin)  # the frontal card
    far = interior(scene.depth_left >= scene.z_far_m - 1e-3, margin)    # the back wall
    d_near = region_disparity(left, right, near, d_px)
    d_far = region_disparity(left, right, far, d_px)
    measured = d_near - d_far
    print(f"divergence {divergence} %: requested {d_px:.2f} px, measured {measured:.2f} px "
          f"({measured / d_px - 1:+.2%}); near {d_near:.2f} px (expected {d_px * convergence:.2f})")
    assert abs(measured / d_px - 1) < 0.05
    assert abs(d_near - d_px * convergence) < 0.05 * d_px
