"""Real RGB-D folder layout loader."""
from __future__ import annotations

import json

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from vdp.errors import DecodeError
from vdp.refiner.rgbd import fill_holes, find_sequences, load_rgbd_sequence


def _write_sequence(root, frames=4, h=12, w=16, scale=5000.0, poses=True, teacher="png"):
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    rng = np.random.default_rng(0)
    depth_m = rng.uniform(0.5, 4.0, size=(frames, h, w))
    depth_m[:, 0, 0] = 0.0                                    # a hole
    for i in range(frames):
        imageio.imwrite(root / "depth" / f"{i:06d}.png", np.round(depth_m[i] * scale).astype(np.uint16))
        imageio.imwrite(root / "rgb" / f"{i:06d}.png", rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    if teacher == "png":
        (root / "teacher").mkdir()
        for i in range(frames):
            imageio.imwrite(root / "teacher" / f"{i:06d}.png",
                            np.round(depth_m[i] * 1.1 * scale).astype(np.uint16))
    elif teacher == "npy":
        (root / "teacher").mkdir()
        for i in range(frames):
            np.save(root / "teacher" / f"{i:06d}.npy", (depth_m[i] * 0.9).astype(np.float32))
    (root / "intrinsics.txt").write_text("20 21 7.5 5.5\n")
    if poses:
        lines = []
        for i in range(frames):
            m = np.eye(4)
            m[0, 3] = 0.1 * i
            lines.append(" ".join(f"{v:g}" for v in m.ravel()))
        (root / "poses.txt").write_text("\n".join(lines) + "\n")
    (root / "meta.json").write_text(json.dumps({"depth_scale": scale, "fps": 15}))
    return depth_m


def test_load_full_sequence(tmp_path):
    depth_m = _write_sequence(tmp_path / "seq")
    s = load_rgbd_sequence(tmp_path / "seq")
    assert s.depth.shape == (4, 12, 16) and s.rgb.shape == (4, 3, 12, 16)
    np.testing.assert_allclose(s.depth.numpy(), depth_m, atol=1 / 5000)
    assert float(s.depth[0, 0, 0]) == 0.0
    np.testing.assert_allclose(s.teacher.numpy(), depth_m * 1.1, atol=1 / 5000)
    assert s.intrinsics[0, 0] == 20 and s.intrinsics[1, 2] == pytest.approx(5.5)
    assert s.poses.shape == (4, 4, 4) and float(s.poses[3, 0, 3]) == pytest.approx(0.3)
    assert s.fps == 15


def test_stride_resize_and_npy_teacher(tmp_path):
    _write_sequence(tmp_path / "a", frames=6, teacher="npy", poses=True)
    s = load_rgbd_sequence(tmp_path / "a", stride=2, max_frames=2, size=(6, 8))
    assert s.depth.shape == (2, 6, 8) and s.teacher.shape == (2, 6, 8) and s.poses.shape == (2, 4, 4)
    assert float(s.poses[1, 0, 3]) == pytest.approx(0.2)
    assert float(s.intrinsics[0, 0]) == pytest.approx(10.0)
    assert float(s.intrinsics[0, 2]) == pytest.approx((7.5 + 0.5) * 0.5 - 0.5)


def test_find_sequences_and_errors(tmp_path):
    _write_sequence(tmp_path / "root" / "s1", poses=False, teacher=None)
    _write_sequence(tmp_path / "root" / "s2", poses=False, teacher=None)
    assert [p.name for p in find_sequences(tmp_path / "root")] == ["s1", "s2"]
    assert find_sequences(tmp_path / "root" / "s1") == [tmp_path / "root" / "s1"]
    with pytest.raises(DecodeError, match="does not exist"):
        find_sequences(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DecodeError, match="holds no sequence folder"):
        find_sequences(tmp_path / "empty")
    with pytest.raises(DecodeError, match="depth/ is missing"):
        load_rgbd_sequence(tmp_path / "empty")
    seq = tmp_path / "root" / "s1"
    (seq / "intrinsics.txt").write_text("1 2 3\n")
    with pytest.raises(DecodeError, match="expected 4 numbers"):
        load_rgbd_sequence(seq)
    (seq / "intrinsics.txt").write_text("20 21 7.5 5.5\n")
    (seq / "poses.txt").write_text(" ".join(["1"] * 16) + "\n")
    with pytest.raises(DecodeError, match="1 poses for 4 depth frames"):
        load_rgbd_sequence(seq)
    (seq / "poses.txt").unlink()
    imageio.imwrite(seq / "depth" / "000001.png", np.zeros((12, 16), dtype=np.uint8))
    with pytest.raises(DecodeError, match="16-bit PNG"):
        load_rgbd_sequence(seq)


def test_fill_holes():
    d = torch.ones(1, 5, 5) * 2.0
    d[0, 2, 2] = 0.0
    d[0, 0, :] = 0.0
    out = fill_holes(d)
    assert bool((out > 0).all())
    torch.testing.assert_close(out, torch.full_like(out, 2.0))


def test_rgb_refiner_eval_and_training_need_rgb_folders(tmp_path):
    import shutil

    from vdp.errors import SpecError
    from vdp.models.refiner import PRESETS, Refiner, save_refiner
    from vdp.refiner.evaluate import evaluate
    from vdp.refiner.train import TrainConfig, build_pool

    for name in ("s1", "s2"):
        _write_sequence(tmp_path / "root" / name, frames=30)
    shutil.rmtree(tmp_path / "root" / "s2" / "rgb")
    save_refiner(Refiner(PRESETS["v1"]), tmp_path / "rgb.pt")
    with pytest.raises(SpecError, match="no rgb/ folder: s2"):
        evaluate(tmp_path / "rgb.pt", data=str(tmp_path / "root"), height=12, width=16,
                 log=lambda s: None)
    with pytest.raises(SpecError, match="no rgb/ folder: s2"):
        build_pool(TrainConfig(preset="v1", data=str(tmp_path / "root"), height=12, width=16))
