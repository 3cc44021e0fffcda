"""Matte outputs written by a real job (RVM, synthetic weights) decode back to the stage's layers."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import MEDIA
from tests.outputs.direct import stage_layers
from vdp.engine.job import run_job
from vdp.io import iter_batches, probe, read_webm_alpha
from vdp.spec import JobSpec, MatteSpec
from vdp.stages.matte import MatteStage
from vdp.types import FrameBatch

CLIP = MEDIA / "decord__flipping_a_pancake.mkv"  # 426x240 with an audio track
FRAMES, FPC, RATIO = 10, 4, 0.5
BACKGROUND = (255, 0, 0)


@pytest.fixture(scope="module")
def reference() -> FrameBatch:
    """The stage's layers for the clip, computed directly (no engine, no writers)."""
    stage = MatteStage(MatteSpec(synthetic_weights=True, frames_per_call=FPC, downsample_ratio=RATIO),
                       precision="fp32")
    return stage_layers(stage, CLIP, FRAMES)


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("matte_job")
    spec = JobSpec.parse({
        "input": str(CLIP), "max_frames": FRAMES, "precision": "fp32",
        "stages": {"matte": {"synthetic_weights": True, "frames_per_call": FPC, "downsample_ratio": RATIO}},
        "resources": {"batch_frames": 3},
        "outputs": [{"kind": "rgba_png"}, {"kind": "foreground_webm"},
                    {"kind": "alpha_mp4", "preset": "veryfast", "encoder": "cpu", "threads": 1},
                    {"kind": "composite_mp4", "background": "#ff0000"}]})
    report = run_job(spec, out, local=True)
    assert report.status == "succeeded" and report.frames == FRAMES
    return out


def decoded(path: Path) -> torch.Tensor:
    return torch.cat([b.frames for b in iter_batches(path, batch_frames=FRAMES)])


def test_layers_are_8_bit_and_the_matte_is_not_flat(reference):
    assert reference.layers["alpha"].dtype == reference.layers["foreground"].dtype == torch.uint8
    assert reference.layers["alpha"].float().std() > 1  # something to compare against


def test_rgba_pngs_hold_the_exact_alpha_and_foreground(job, reference):
    files = sorted((job / "rgba_png").iterdir())
    assert [f.name for f in files] == [f"frame_{i:06d}.png" for i in range(FRAMES)]
    for i, f in enumerate(files):
        with Image.open(io.BytesIO(f.read_bytes())) as im:
            assert im.mode == "RGBA"
            rgba = torch.from_numpy(np.asarray(im).copy())
        assert torch.equal(rgba[..., 3], reference.layers["alpha"][i])
        assert torch.equal(rgba[..., :3].permute(2, 0, 1), reference.layers["foreground"][i])


def test_webm_alpha_decodes_back_within_two_levels(job, reference):
    alpha = torch.from_numpy(np.ascontiguousarray(read_webm_alpha(job / "foreground.webm")))
    assert alpha.shape == reference.layers["alpha"].shape
    assert (alpha.float() - reference.layers["alpha"].float()).abs().mean() <= 2.0


def test_alpha_mp4_is_gray_and_close(job, reference):
    frames = decoded(job / "alpha.mp4").int()
    assert frames.shape == (FRAMES, 3, 240, 426)
    assert (frames[:, 0] - frames[:, 1]).abs().max() <= 2  # gray: no colour
    assert (frames[:, 1].float() - reference.layers["alpha"].float()).abs().mean() <= 3.0


def test_composite_is_foreground_over_the_colour_with_audio(job, reference):
    a = reference.layers["alpha"].float().unsqueeze(1) / 255
    bg = torch.tensor(BACKGROUND, dtype=torch.float32).view(1, 3, 1, 1)
    expected = reference.layers["foreground"].float() * a + bg * (1 - a)
    got = decoded(job / "composite.mp4").float()
    assert (got - expected).abs().mean() <= 4.0
    assert probe(job / "composite.mp4").has_audio


def test_mp4_preset_reaches_the_encoder(job):
    """x264 writes its settings into the stream: subme=2 is veryfast, subme=0 ultrafast (default);
    the threads option reaches it too."""
    alpha = (job / "alpha.mp4").read_bytes()
    assert b"subme=2" in alpha and b"threads=1 " in alpha
    assert b"subme=0" in (job / "composite.mp4").read_bytes()
