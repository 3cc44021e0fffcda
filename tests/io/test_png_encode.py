"""encode_png: every colour type and bit depth decodes back exactly with independent decoders."""
from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import MEDIA
from vdp.io import iter_batches
from vdp.io.writers.png_encode import encode_png

SHAPES = [(1, 1), (3, 5), (17, 31)]


def random_image(shape: tuple[int, ...], dtype: type, seed: int = 0) -> np.ndarray:
    info = np.iinfo(dtype)
    img = np.random.default_rng(seed).integers(0, info.max + 1, size=shape, dtype=np.int64)
    img.flat[0], img.flat[-1] = info.max, 0  # the extremes, so wrap-around in the filter is hit
    return img.astype(dtype)


def pil_decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        arr = np.asarray(im)
        return arr.astype(np.uint16) if im.mode.startswith("I;16") else arr


@pytest.mark.parametrize("level", [0, 1, 2, 3])
@pytest.mark.parametrize("hw", SHAPES)
@pytest.mark.parametrize("channels", [None, 2, 3, 4])
def test_uint8_images_decode_back_exactly(hw: tuple[int, int], channels: int | None, level: int) -> None:
    shape = hw if channels is None else (*hw, channels)
    img = random_image(shape, np.uint8)
    np.testing.assert_array_equal(pil_decode(encode_png(img, level=level)), img)


@pytest.mark.parametrize("hw", SHAPES)
def test_uint16_gray_decodes_back_exactly(hw: tuple[int, int]) -> None:
    img = random_image(hw, np.uint16)
    np.testing.assert_array_equal(pil_decode(encode_png(img)), img)


def test_single_channel_and_non_contiguous_inputs() -> None:
    img = random_image((6, 9, 3), np.uint8)
    np.testing.assert_array_equal(pil_decode(encode_png(img[..., :1])), img[..., 0])
    view = img.transpose(1, 0, 2)  # not C-contiguous
    np.testing.assert_array_equal(pil_decode(encode_png(view)), view)


def test_ffmpeg_reads_16_bit_and_rgba_files(tmp_path: Path) -> None:
    """A second, unrelated decoder (FFmpeg's) agrees on size and pixel format."""
    for name, img, pix_fmt in (("d.png", random_image((12, 20), np.uint16), "gray16be"),
                               ("c.png", random_image((12, 20, 4), np.uint8), "rgba")):
        (tmp_path / name).write_bytes(encode_png(img))
        out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp_path / name), "-f", "rawvideo",
                              "-pix_fmt", pix_fmt, "-"], capture_output=True, check=True, timeout=60).stdout
        raw = np.frombuffer(out, dtype=">u2" if img.dtype == np.uint16 else np.uint8)
        np.testing.assert_array_equal(raw.reshape(img.shape), img)


def test_real_frame_compresses_like_zlib_level_1() -> None:
    """On a video frame the files are no bigger than Pillow's at zlib level 1 (+5%)."""
    batch = next(iter(iter_batches(MEDIA / "sam2__05_default_juggle.mp4", batch_frames=1, stop_frame=1)))
    rgb = batch.frames[0].permute(1, 2, 0).numpy()
    ours = encode_png(rgb)
    pil = io.BytesIO()
    Image.fromarray(rgb).save(pil, "PNG", compress_level=1)
    np.testing.assert_array_equal(pil_decode(ours), rgb)
    assert len(ours) <= 1.05 * len(pil.getvalue())
    assert len(ours) < 0.8 * rgb.nbytes  # really compressed, not stored


@pytest.mark.parametrize("bad, match", [
    (np.zeros((4, 4), np.float32), "uint8 or uint16"),
    (np.zeros((4, 4, 5), np.uint8), r"\[H,W\]"),
    (np.zeros((0, 4), np.uint8), r"\[H,W\]"),
    (np.zeros((2, 4, 4, 3), np.uint8), r"\[H,W\]"),
])
def test_bad_images_are_value_errors(bad: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        encode_png(bad)


def test_bad_level_is_value_error() -> None:
    with pytest.raises(ValueError, match="level"):
        encode_png(np.zeros((2, 2), np.uint8), level=6)
