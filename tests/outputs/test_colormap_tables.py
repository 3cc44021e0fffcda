"""turbo and inferno are the published 256-entry tables exactly: spot entries, the Colouriser's
lookup table, and a colour MP4 of a ramp decoded back within codec tolerance."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vdp.io import iter_batches
from vdp.outputs import open_outputs
from vdp.outputs.colormap import Colouriser, StableRange, colormap_float, colormap_table
from vdp.spec import JobSpec
from vdp.types import FrameBatch, VideoInfo

# Entries read at development time from matplotlib 3.11.2:
# numpy.round(matplotlib.colormaps[name](k)[:3] * 255) for each index k.
SPOTS = {
    "turbo": {0: (48, 18, 59), 1: (50, 21, 67), 64: (40, 188, 235), 128: (164, 252, 60),
              191: (251, 129, 34), 255: (122, 4, 3)},
    "inferno": {0: (0, 0, 4), 1: (1, 0, 5), 64: (87, 16, 110), 128: (188, 55, 84),
                191: (249, 140, 10), 255: (252, 255, 164)},
}


@pytest.mark.parametrize("name", sorted(SPOTS))
def test_spot_entries_are_the_published_ones(name: str) -> None:
    table = colormap_table(name)
    assert table.dtype == torch.uint8 and table.shape == (256, 3)
    for k, rgb in SPOTS[name].items():
        assert tuple(table[k].tolist()) == rgb, (name, k)
    # the float map passes through every entry
    x = torch.tensor(sorted(SPOTS[name]), dtype=torch.float64) / 255
    assert torch.equal((colormap_float(name, x) * 255).round().to(torch.uint8),
                       torch.tensor([SPOTS[name][k] for k in sorted(SPOTS[name])], dtype=torch.uint8))


def test_gray_is_unchanged_and_the_table_cannot_be_altered_by_a_caller() -> None:
    assert torch.equal(colormap_table("gray"), torch.arange(256, dtype=torch.uint8)[:, None].expand(256, 3))
    colormap_table("turbo")[0] = 0
    assert tuple(colormap_table("turbo")[0].tolist()) == SPOTS["turbo"][0]
    with pytest.raises(ValueError, match="unknown colormap 'jet'"):
        colormap_table("jet")


@pytest.mark.parametrize("name", sorted(SPOTS))
def test_the_colourisers_lookup_is_the_table_exactly(name: str) -> None:
    table = colormap_table(name)
    colouriser = Colouriser(name, StableRange(low=0.0, high=255.0))
    assert torch.equal(torch.from_numpy(colouriser.rgb_tables).T, table)
    # values 0..255 with the range 0..255 land on index k: the output is the table, in order
    values = torch.arange(256, dtype=torch.float32).view(1, 16, 16)
    got = colouriser(values)
    assert torch.equal(got[0].permute(1, 2, 0).reshape(256, 3), table)


@pytest.mark.parametrize("name", sorted(SPOTS))
def test_a_colour_mp4_of_a_ramp_decodes_to_the_table_colours(tmp_path, name: str) -> None:
    # 16 bands of one depth each, 16 px wide (whole 4:2:0 chroma blocks, no chroma mixing inside)
    h, w, bands = 32, 256, 16
    depth = torch.arange(bands, dtype=torch.float32).repeat_interleave(w // bands).expand(4, h, w).contiguous()
    info = VideoInfo(path="synthetic", num_frames=4, fps=24.0, duration_seconds=4 / 24, width=w,
                     height=h, codec="none")
    spec = JobSpec.parse({"input": "x", "stages": {"depth": {}},
                          "outputs": [{"kind": "depth_color_mp4", "colormap": name, "crf": 0}]})
    (out,) = open_outputs(spec, tmp_path, info)
    idx = torch.arange(4)
    out.write(FrameBatch(torch.zeros(4, 3, h, w, dtype=torch.uint8), idx, idx.double() / 24, {"depth": depth}))
    path = out.close()
    video = torch.cat([b.frames for b in iter_batches(path, batch_frames=4)]).float()
    assert video.shape == (4, 3, h, w)
    # the index of each band from the output's fixed range (truncation of the scaled value)
    k = 255 / (out.range.high - out.range.low)
    index = np.clip(np.arange(bands) * k + (0.5 - out.range.low * k), 0.5, 255.5).astype(int)
    assert len(set(index.tolist())) == bands and index.max() - index.min() > 150  # the ramp spans the map
    expected = colormap_table(name)[torch.from_numpy(index)].float()  # [bands,3]
    centres = video[:, :, 4:-4, :].unfold(3, w // bands, w // bands)[..., 4:-4]  # [T,3,h',bands,px]
    got = centres.mean(dim=(0, 2, 4)).T  # [bands,3]
    error = (got - expected).abs()
    print(f"{name}: decoded band colours vs table: max {error.max():.2f}, mean {error.mean():.2f} levels")
    assert error.max() <= 4.0  # yuv420p round trip at crf 0 (limited range, 8 bits)
