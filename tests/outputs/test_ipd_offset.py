"""IPD offset on real encoded stereo outputs: on a flat textured plane the parallax between the
decoded views moves by the predicted number of pixels in every layout that shows both views,
0 writes the same bytes as a spec without the field, and out-of-range values are spec errors."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vdp import catalog
from vdp.errors import SpecError
from vdp.io import iter_batches
from vdp.spec import JobSpec, OutputSpec, StereoSpec, output_name
from vdp.stages.stereo import StereoStage
from vdp.types import FrameBatch, VideoInfo

H, W, T = 64, 320, 3
DIVERGENCE, CONVERGENCE = 2.5, 0.0  # D = 8 px; a flat plane has nearness 0.5 -> parallax -4 px
KINDS = ["sbs_full", "sbs_half", "tb_full", "sbs_cross", "anaglyph_444", "vr180_sbs"]


def texture() -> torch.Tensor:
    """uint8 ``[T,3,H,W]``: smoothed noise, the same in every frame (sharp enough to match)."""
    rng = np.random.default_rng(7)
    noise = torch.from_numpy(rng.uniform(0, 255, (1, 3, H // 4, W // 4)).astype(np.float32))
    img = F.interpolate(noise, size=(H, W), mode="bicubic", align_corners=False)
    return img.round().clamp(0, 255).to(torch.uint8).expand(T, -1, -1, -1).contiguous()


def render(tmp_path, ipd: float | None, kinds: list[str]) -> dict[str, bytes]:
    """Write every kind of `kinds` from the flat plane; returns each file's bytes."""
    options = {} if ipd is None else {"ipd_offset": ipd}
    stage = StereoStage(StereoSpec(divergence=DIVERGENCE, convergence=CONVERGENCE, lookahead_frames=0,
                                   **options))
    stage.setup("cpu")
    info = VideoInfo(path="synthetic", num_frames=T, fps=24.0, duration_seconds=T / 24, width=W,
                     height=H, codec="none")
    out_dir = tmp_path / f"ipd_{ipd}"
    outputs = []
    for k in kinds:
        spec = OutputSpec(kind=k, crf=4, encoder="cpu")
        outputs.append(catalog.output(k).output_class()(spec, out_dir / output_name(spec), info,
                                                         num_frames=T))
    idx = torch.arange(T)
    batch = FrameBatch(texture(), idx, idx.double() / 24, {"depth": torch.full((T, H, W), 0.7)})
    out, state = stage.process(batch, stage.init_state(info))
    rest = stage.flush(state)
    for o in outputs:
        for b in (out, rest):
            if b is not None and len(b):
                o.write(b)
    paths = [o.close() for o in outputs]
    return {k: p.read_bytes() for k, p in zip(kinds, paths)} | {"_dir": str(out_dir)}


def decoded(path) -> torch.Tensor:
    return torch.cat([b.frames for b in iter_batches(path, batch_frames=8)]).float()


def parallax(left: torch.Tensor, right: torch.Tensor, search: int = 24) -> int:
    """The shift ``s`` with ``left[x] == right[x - s]`` best (mean absolute difference, middle rows
    and columns only), i.e. ``x_left - x_right``."""
    m = search + 4
    errors = {s: float((left[..., 8:-8, m:-m] - right[..., 8:-8, m - s:right.shape[-1] - m - s]).abs().mean())
              for s in range(-search, search + 1)}
    best = min(errors, key=errors.get)
    assert errors[best] < 0.25 * np.median(list(errors.values())), errors  # a clear match
    return best


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ipd")
    return {ipd: render(tmp, ipd, KINDS) for ipd in (None, 0.0, 5.0, -2.5)}


@pytest.mark.parametrize("ipd,expected", [(0.0, -4), (5.0, 12), (-2.5, -12)])
def test_parallax_between_the_views_moves_by_the_offset(rendered, ipd, expected):
    # flat plane: parallax D * (0.5 - (1 - 0)) + ipd / 100 * W = -4 + 3.2 * ipd pixels
    out = Path(rendered[ipd]["_dir"])
    full = decoded(out / output_name(OutputSpec(kind="sbs_full")))
    assert parallax(full[..., :W], full[..., W:]) == expected
    tb = decoded(out / output_name(OutputSpec(kind="tb_full")))
    assert parallax(tb[..., :H, :], tb[..., H:, :]) == expected
    cross = decoded(out / output_name(OutputSpec(kind="sbs_cross")))
    assert parallax(cross[..., W:], cross[..., :W]) == expected  # right view on the left
    half = decoded(out / output_name(OutputSpec(kind="sbs_half")))
    assert abs(2 * parallax(half[..., :W // 2], half[..., W // 2:]) - expected) <= 1  # half width


def test_the_offset_reaches_the_anaglyph_and_vr180(rendered):
    for kind in ("anaglyph_444", "vr180_sbs"):
        assert rendered[5.0][kind] != rendered[0.0][kind], kind
    # VR180: each eye's centre is the flat view's centre, so the parallax there is still measurable
    for ipd, expected in ((0.0, -4), (5.0, 12)):
        vr = decoded(Path(rendered[ipd]["_dir"]) / output_name(OutputSpec(kind="vr180_sbs")))
        side = vr.shape[-1] // 2
        left, right = vr[..., side // 2 - 40:side // 2 + 40], vr[..., side + side // 2 - 40:side + side // 2 + 40]
        # the equirectangular map keeps about the flat view's pixel pitch at the centre
        assert abs(parallax(left, right, search=16) - expected) <= 1


def test_zero_writes_the_same_bytes_as_no_offset(rendered):
    for kind in KINDS:
        assert hashlib.sha256(rendered[0.0][kind]).digest() == hashlib.sha256(rendered[None][kind]).digest(), kind


@pytest.mark.parametrize("value", [-10.5, 20.5, float("nan")])
def test_out_of_range_offsets_are_spec_errors(value):
    with pytest.raises(SpecError, match="stages.stereo.ipd_offset"):
        JobSpec.parse({"input": "x", "stages": {"depth": {}, "stereo": {"ipd_offset": value}},
                       "outputs": [{"kind": "sbs_full"}]})
    for ok in (-10, 20, 2.5):
        spec = JobSpec.parse({"input": "x", "stages": {"depth": {}, "stereo": {"ipd_offset": ok}},
                              "outputs": [{"kind": "sbs_full"}]})
        assert spec.stages.stereo.ipd_offset == ok
    assert StereoSpec().ipd_offset == 0.0
