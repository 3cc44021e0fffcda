"""Cross-eyed and RGBD layouts and the encoder choice from a real job, and the 4:4:4 anaglyph's
colour fidelity measured against 4:2:0 on a real frame pair."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import MEDIA
from vdp.engine.job import run_job
from vdp.io import Mp4Writer, iter_batches, probe
from vdp.spec import JobSpec
from vdp.stereo.anaglyph import anaglyph_dubois

CLIP = MEDIA / "decord__flipping_a_pancake.mkv"  # 426x240, Opus audio


def decoded(path) -> torch.Tensor:
    return torch.cat([b.frames for b in iter_batches(path, batch_frames=8)]).float()


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    out = tmp_path_factory.mktemp("layouts")
    spec = JobSpec.parse({
        "input": str(CLIP), "max_frames": 4, "output_names": "input",
        "stages": {"depth": {"input_size": 56, "synthetic_weights": True}, "stereo": {"lookahead_frames": 0}},
        "outputs": [{"kind": "sbs_full", "encoder": "x265", "crf": 10}, {"kind": "sbs_cross", "crf": 10},
                    {"kind": "rgbd", "crf": 10}, {"kind": "anaglyph_444"}],
        "resources": {"device": "cpu", "batch_frames": 4}})
    report = run_job(spec, out, local=True)
    return out, report


def test_cross_eyed_swaps_the_views_and_x265_gives_hevc(job):
    out, report = job
    stem = "decord__flipping_a_pancake"
    full, cross = out / f"{stem}_LRF_Full_SBS.mp4", out / f"{stem}_RLF_Cross_SBS.mp4"
    assert probe(full).codec == "hevc" and probe(cross).codec == "h264"
    assert probe(cross).has_audio and (probe(cross).width, probe(cross).height) == (852, 240)
    a, b = decoded(full), decoded(cross)
    assert (a[..., :426] - b[..., 426:]).abs().mean() < 3  # left view now on the right
    assert (a[..., 426:] - b[..., :426]).abs().mean() < 3
    assert (a[..., :426] - a[..., 426:]).abs().mean() > 2 * (a[..., :426] - b[..., 426:]).abs().mean()


def test_rgbd_is_colour_then_grey_depth(job):
    out, _ = job
    f = decoded(out / "decord__flipping_a_pancake_RGBD.mp4")
    src = torch.cat([b.frames for b in iter_batches(CLIP, batch_frames=4, stop_frame=4)]).float()
    assert f.shape[-1] == 852
    assert (f[..., :426] - src).abs().median() < 3  # (the synthetic-weights stamp aside)
    depth = f[..., 426:]
    assert (depth[:, 0] - depth[:, 1]).abs().max() < 12 and (depth[:, 1] - depth[:, 2]).abs().max() < 12  # grey
    assert depth.std() > 10  # it carries the depth, not a flat frame


def test_anaglyph_444_and_its_smear_against_420(tmp_path, job):
    out, _ = job
    info = probe(out / "decord__flipping_a_pancake_Anaglyph_444.mp4")
    assert info.num_frames == 4 and info.has_audio
    # the same exact anaglyph encoded both ways: 4:2:0 bleeds chroma across every red/cyan edge
    frames = torch.cat([b.frames for b in iter_batches(CLIP, batch_frames=4, stop_frame=4)])
    left, right = frames[..., 8:], frames[..., :-8]  # 8-pixel disparity
    exact = anaglyph_dubois(left.contiguous(), right.contiguous())
    ex = exact.float()
    red_cyan = ex[:, 0] - (ex[:, 1] + ex[:, 2]) / 2  # the signal that separates the eyes
    step = (red_cyan[..., 1:] - red_cyan[..., :-1]).abs() > 40
    edges = torch.zeros_like(red_cyan, dtype=torch.bool)
    edges[..., 1:] |= step
    edges[..., :-1] |= step
    assert edges.float().mean() > 0.005  # the pair has depth edges to smear
    errors = {}
    for fmt in ("yuv420p", "yuv444p"):
        path = tmp_path / f"{fmt}.mp4"
        with Mp4Writer(path, fps=30, crf=18, preset="veryfast", encoder="cpu", pixel_format=fmt) as w:
            w.write(exact)
        got = decoded(path)[..., :exact.shape[-2], :exact.shape[-1]]
        got_rc = got[:, 0] - (got[:, 1] + got[:, 2]) / 2
        errors[fmt] = float((got_rc - red_cyan).abs()[edges].mean())
    print("red-cyan error at edges (crf 18), 420 vs 444:", errors)
    assert errors["yuv444p"] < 0.6 * errors["yuv420p"]
