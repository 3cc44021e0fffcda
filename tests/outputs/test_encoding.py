"""Cheap writers give the same pictures: LUT colours, PNG16 values, composites and VP9 alpha
match the float maths and the previous encoder settings."""
from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from tests.io.test_writers import moving_disk_rgba
from vdp.io import WebmAlphaWriter, iter_batches, read_webm_alpha, read_webm_rgba
from vdp import catalog
from vdp.outputs._pixels import Scratch, float_to_u8
from vdp.outputs.colormap import COLORMAPS, Colouriser, StableRange, colormap_float, colormap_table
from vdp.spec import OutputSpec
from vdp.types import FrameBatch, VideoInfo


def info(t: int, h: int, w: int) -> VideoInfo:
    return VideoInfo(path="synthetic", num_frames=t, fps=24.0, duration_seconds=t / 24, width=w,
                     height=h, codec="none")


def batch(depth: torch.Tensor, **layers: torch.Tensor) -> FrameBatch:
    t, h, w = depth.shape
    idx = torch.arange(t)
    return FrameBatch(torch.zeros(t, 3, h, w, dtype=torch.uint8), idx, idx.double() / 24,
                      {"depth": depth, **layers})


@pytest.mark.parametrize("name", COLORMAPS)
def test_lut_colours_equal_the_float_colour_map_within_one_level(name: str) -> None:
    values = torch.from_numpy(np.random.default_rng(1).normal(5.0, 2.0, (3, 37, 53)).astype(np.float32))
    values[0, 0, :5] = torch.tensor([-100.0, 100.0, float("nan"), 0.0, 10.0])
    reference = StableRange(low_pct=2.0, high_pct=98.0, margin=0.1)
    expected_pos = (reference.normalise(values) * 255).round() / 255  # the old per-pixel float path
    expected = (colormap_float(name, expected_pos) * 255).permute(0, 3, 1, 2)
    value_range = StableRange(low_pct=2.0, high_pct=98.0, margin=0.1)
    got = Colouriser(name, value_range)(values)
    assert got.dtype == torch.uint8 and got.shape == (3, 3, 37, 53) and got.is_contiguous()
    finite = torch.isfinite(values).unsqueeze(1).expand_as(got)
    assert (got.double() - expected).abs()[finite].max() <= 1.0
    assert torch.equal(got[0, :, 0, 2], colormap_table(name)[0])  # NaN takes the first colour
    assert (value_range.low, value_range.high) == (reference.low, reference.high)
    assert value_range.clipped == reference.clipped + 1 >= 3  # the two outliers and the NaN


def test_turbo_table_runs_dark_blue_to_green_to_dark_red() -> None:
    table = colormap_table("turbo").int()
    assert table[30, 2] > 200 and table[30, 0] < 100  # blue
    assert table[128, 1] > 240  # green at the middle
    assert table[230, 0] > 180 and table[230, 2] < 20  # red
    assert table[0].sum() < 130 and table[255].sum() < 130  # both ends dark


def test_depth_png16_stores_the_rounded_scaled_values_exactly(tmp_path: Path) -> None:
    depth = torch.from_numpy(np.random.default_rng(2).uniform(0.5, 3.0, (4, 21, 34)).astype(np.float32))
    spec = OutputSpec(kind="depth_png16", png_level=0)
    png16 = catalog.output("depth_png16").output_class()
    out = png16(spec, tmp_path / "png", info(6, 21, 34), num_frames=6,
                depth_kind="metric")
    extra = torch.tensor([-1.0, 70.0, float("nan")]).repeat(2 * 21 * 34 // 3).view(2, 21, 34)
    out.write(batch(depth))
    out.write(FrameBatch(torch.zeros(2, 3, 21, 34, dtype=torch.uint8), torch.arange(4, 6),
                         torch.arange(4, 6).double(), {"depth": extra}))
    out.close()
    back = np.stack([iio.imread(tmp_path / "png" / f"frame_{i:06d}.png") for i in range(6)])
    sidecar = json.loads((tmp_path / "png.json").read_text())
    expected = np.rint(depth.numpy() / np.float32(0.001)).astype(np.uint16)
    assert back.dtype == np.uint16 and np.array_equal(back[:4], expected)
    assert sidecar["scale"] == 0.001 and sidecar["clipped_pixels"] == 2 * 2 * 21 * 34 // 3
    assert set(np.unique(back[4:])) == {0, 65535}  # -1 and NaN -> 0, 70 m -> the top


def test_numpy_u8_equals_the_float_formula() -> None:
    rng = np.random.default_rng(3)
    alpha_f = rng.uniform(-0.1, 1.1, (2, 17, 29)).astype(np.float32)
    alpha = float_to_u8(torch.from_numpy(alpha_f), Scratch())
    assert np.array_equal(alpha, np.rint(np.clip(alpha_f, 0, 1) * 255).astype(np.uint8))


def test_vp9_alpha_of_the_fast_settings_is_within_two_levels_of_the_previous(tmp_path: Path) -> None:
    rgb, alpha = moving_disk_rgba(10, 72, 128)
    files = {}
    for name, kwargs in {"new": {}, "old": {"deadline": "good", "speed": 4}}.items():
        files[name] = tmp_path / f"{name}.webm"
        with WebmAlphaWriter(files[name], fps=24, **kwargs) as writer:
            writer.write(rgb[:6], alpha[:6])
            writer.write(torch.from_numpy(rgb[6:]), torch.from_numpy(alpha[6:]))
    new, old = (read_webm_alpha(files[k]).astype(int) for k in ("new", "old"))
    assert new.shape == old.shape == alpha.shape
    assert np.abs(new - old).mean() <= 2.0
    assert np.abs(new - alpha).mean() <= 2.0
    colour = read_webm_rgba(files["new"])[..., :3].astype(int)  # the planes went in the right order
    assert np.abs(colour - rgb.transpose(0, 2, 3, 1)).mean() <= 6.0


def test_foreground_webm_and_composite_use_the_spec_settings(tmp_path: Path) -> None:
    from tests.conftest import MEDIA

    clip = MEDIA / "sam2__05_default_juggle.mp4"
    frames = next(iter_batches(clip, batch_frames=6, stop_frame=6)).frames[..., ::8, ::8].contiguous()
    t, _, h, w = frames.shape
    alpha = torch.linspace(0, 1, w).expand(t, h, w).contiguous()
    b = FrameBatch(frames, torch.arange(t), torch.arange(t).double() / 24, {"alpha": alpha})
    decoded = {}
    for tag, opts in {"new": {}, "old": {"vp9_deadline": "good", "vp9_speed": 4}}.items():
        spec = OutputSpec(kind="foreground_webm", **opts)
        webm = catalog.output("foreground_webm").output_class()
        out = webm(spec, tmp_path / f"{tag}.webm", info(t, h, w))
        out.write(b)
        out.close()
        assert (out.writer.deadline, out.writer.speed) == ((spec.vp9_deadline, spec.vp9_speed))
        decoded[tag] = read_webm_alpha(tmp_path / f"{tag}.webm").astype(int)
    assert np.abs(decoded["new"] - decoded["old"]).mean() <= 2.0
