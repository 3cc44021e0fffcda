"""Post-production mattes from a real job (RVM, synthetic weights): ProRes 4444 decodes back with
its alpha within 1/255 and the source audio, the foreground colour video plays, 16-bit PNG alpha
holds the matte exactly."""
from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from tests.conftest import MEDIA
from tests.outputs.direct import stage_layers
from vdp.engine.job import run_job
from vdp.io import iter_batches, probe
from vdp.io.writers.prores import read_rgba16
from vdp.outputs.mattes_post import alpha16
from vdp.spec import JobSpec, MatteSpec
from vdp.stages.matte import MatteStage
from vdp.types import FrameBatch

CLIP = MEDIA / "decord__flipping_a_pancake.mkv"  # 426x240 with an audio track
FRAMES = 6
MATTE = {"synthetic_weights": True, "frames_per_call": 3, "downsample_ratio": 0.5}


@pytest.fixture(scope="module")
def reference() -> FrameBatch:
    stage = MatteStage(MatteSpec(**MATTE), precision="fp32")
    return stage_layers(stage, CLIP, FRAMES)


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("post_mattes")
    spec = JobSpec.parse({
        "input": str(CLIP), "max_frames": FRAMES, "precision": "fp32", "output_names": "input",
        "stages": {"matte": MATTE}, "resources": {"batch_frames": 4},
        "outputs": [{"kind": "prores4444_mov"}, {"kind": "foreground_mp4", "preset": "ultrafast"},
                    {"kind": "alpha_png16"}]})
    report = run_job(spec, out, local=True)
    assert report.outputs == ["decord__flipping_a_pancake_ProRes4444_alpha.mov",
                              "decord__flipping_a_pancake_foreground.mp4",
                              "decord__flipping_a_pancake_alpha_png16"]
    return out


def test_prores_4444_decodes_back_with_alpha_within_1_255(job, reference):
    path = job / "decord__flipping_a_pancake_ProRes4444_alpha.mov"
    info = probe(path)
    assert info.codec == "prores" and info.num_frames == FRAMES and info.has_audio
    rgba = read_rgba16(path).astype(np.float64) / 65535
    alpha = reference.layers["alpha"].numpy().astype(np.float64) / 255
    assert reference.layers["alpha"].float().std() > 1  # a matte worth comparing
    assert rgba.shape == (FRAMES, 240, 426, 4)
    assert np.abs(rgba[..., 3] - alpha).max() <= 1 / 255
    fgr = reference.layers["foreground"].permute(0, 2, 3, 1).numpy().astype(np.float64) / 255
    assert np.abs(rgba[..., :3] - fgr).mean() < 1.5 / 255  # 10-bit 4:4:4 colour


def test_foreground_video_and_png16_alpha(job, reference):
    fg = job / "decord__flipping_a_pancake_foreground.mp4"
    info = probe(fg)
    assert info.num_frames == FRAMES and info.has_audio and (info.width, info.height) == (426, 240)
    frames = np.concatenate([b.frames.numpy() for b in iter_batches(fg, batch_frames=FRAMES)]).astype(float)
    assert np.abs(frames - reference.layers["foreground"].numpy()).mean() < 4
    files = sorted((job / "decord__flipping_a_pancake_alpha_png16").iterdir())
    assert [f.name for f in files] == [f"frame_{i:06d}.png" for i in range(FRAMES)]
    png = np.stack([iio.imread(f) for f in files])
    assert png.dtype == np.uint16
    assert np.array_equal(png, reference.layers["alpha"].numpy().astype(np.uint16) * 257)


def test_float_alpha_keeps_16_bits():
    import torch

    a = torch.tensor([[[0.0, 0.5, 1.0, 1 / 65535]]])
    assert alpha16(a).tolist() == [[[0, 32768, 65535, 1]]]
