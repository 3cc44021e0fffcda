"""VR180: equirectangular 180-degree SBS whose Spherical Video V2 boxes are parsed back from
the encoded MP4 (an independent box walk here, and ffmpeg's own reading), and which still plays."""
from __future__ import annotations

import math
import re
import struct
from pathlib import Path

import pytest
import torch

from tests.outputs.test_stereo_outputs import ROOFTOP, make_source
from vdp.io import iter_batches, probe
from vdp.io._ffmpeg import ffmpeg_exe, run_ffmpeg
from vdp.lift.camera import Intrinsics
from vdp.outputs.vr180 import Vr180SbsOutput
from vdp.spec import CameraSpec, OutputSpec, StereoSpec
from vdp.stages.stereo import StereoStage
from vdp.stereo.equirect import EquirectMap, equirect_grid, eye_side, to_equirect


def box_list(buf: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """Child boxes of buf[start:end]: (type, payload start, end). 32-bit sizes only."""
    out, pos = [], start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", buf, pos)
        assert size >= 8, (kind, size)
        out.append((kind, pos + 8, pos + size))
        pos += size
    assert pos == end
    return out


def boxes(buf: bytes, start: int, end: int) -> dict[bytes, tuple[int, int]]:
    """Child boxes by type (the first of each): type -> (payload start, end)."""
    out: dict[bytes, tuple[int, int]] = {}
    for kind, a, b in box_list(buf, start, end):
        out.setdefault(kind, (a, b))
    return out


def video_sample_entry_children(path: Path) -> tuple[bytes, dict, bytes]:
    data = path.read_bytes()
    top = boxes(data, 0, len(data))
    region = top[b"moov"]
    for trak_start, trak_end in [(a, b) for k, a, b in box_list(data, *region) if k == b"trak"]:
        mdia = boxes(data, trak_start, trak_end)[b"mdia"]
        hdlr = boxes(data, *mdia)[b"hdlr"]
        if data[hdlr[0] + 8:hdlr[0] + 12] != b"vide":
            continue
        stbl = boxes(data, *boxes(data, *boxes(data, *mdia)[b"minf"])[b"stbl"])
        stsd_start, stsd_end = stbl[b"stsd"]
        entry_kind = data[stsd_start + 12:stsd_start + 16]
        entry_start = stsd_start + 8  # version/flags + entry count
        entry_size = struct.unpack_from(">I", data, entry_start)[0]
        children = boxes(data, entry_start + 86, entry_start + entry_size)
        return entry_kind, children, data
    raise AssertionError("no video track")


def render_vr180(source: Path, out: Path, camera: CameraSpec | None = None) -> Path:
    info = probe(source)
    stage = StereoStage(StereoSpec(divergence=3.0, lookahead_frames=3))
    stage.setup("cpu")
    state = stage.init_state(info)
    output = Vr180SbsOutput(OutputSpec(kind="vr180_sbs"), out, info, camera=camera)
    for batch in iter_batches(source, batch_frames=4):
        ramp = torch.linspace(0, 1, batch.height).view(1, -1, 1).expand(len(batch), -1, batch.width)
        res, state = stage.process(batch.with_layers(depth=ramp.contiguous()), state)
        if res is not None and len(res):
            output.write(res)
    last = stage.flush(state)
    if last is not None and len(last):
        output.write(last)
    return output.close()


@pytest.mark.parametrize("audio", [True, False], ids=["faststart-with-audio", "video-only"])
def test_vr180_boxes_parse_back_and_the_video_plays(tmp_path, audio):
    if audio:
        src = make_source(tmp_path, ROOFTOP, "src.mp4", "160x90", frames=8)
    else:
        src = tmp_path / "src.mp4"
        run_ffmpeg(["-y", "-f", "lavfi", "-i", "testsrc=size=160x90:rate=30", "-frames:v", "8",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(src)], timeout_s=60, what="test source")
    path = render_vr180(src, tmp_path / "clip_180x180_LR.mp4")
    kind, children, data = video_sample_entry_children(path)
    assert kind == b"avc1"
    assert b"avcC" in children  # the encoder's own boxes are intact
    st3d = children[b"st3d"]
    assert data[st3d[0]:st3d[0] + 4] == b"\0\0\0\0" and data[st3d[0] + 4] == 2  # left-right
    sv3d = boxes(data, *children[b"sv3d"])
    svhd = sv3d[b"svhd"]
    assert data[svhd[0] + 4:svhd[1]] == b"vdp\0"
    proj = boxes(data, *sv3d[b"proj"])
    assert struct.unpack_from(">iii", data, proj[b"prhd"][0] + 4) == (0, 0, 0)
    top, bottom, left, right = struct.unpack_from(">IIII", data, proj[b"equi"][0] + 4)
    assert (top, bottom) == (0, 0)
    assert left == right == 1 << 30  # a quarter of 360 degrees cropped each side: 180 wide
    # ffmpeg reads the same metadata
    err = _ffmpeg_info(path)
    assert re.search(r"Stereo 3D: side by side", err), err
    assert re.search(r"Spherical Mapping: (tiled )?equirectangular", err), err
    # plays: every frame decodes, 2S x S with S = pi * f of the default 70-degree camera
    info = probe(path)
    side = eye_side(Intrinsics.from_hfov(160, 90, 70.0))
    assert (info.width, info.height) == (2 * side, side)
    assert info.num_frames == 8 and info.has_audio == audio
    frame = next(iter_batches(path, batch_frames=1)).frames[0].float()
    assert frame[:, :8, :8].max() < 24 and frame[:, -8:, -8:].max() < 24  # outside the view: black
    c = side // 2
    assert frame[:, c - 4:c + 4, c - 4:c + 4].mean() > 20  # the view in the middle of each eye
    assert frame[:, c - 4:c + 4, side + c - 4:side + c + 4].mean() > 20


def _ffmpeg_info(path: Path) -> str:
    import subprocess

    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True,
                          text=True, timeout=60)
    return proc.stderr


def test_equirect_grid_puts_the_view_at_its_field_of_view():
    intr = Intrinsics.from_hfov(200, 100, 90.0)
    side = 180
    grid = equirect_grid(intr, side)[0]
    mid = side // 2
    # the pixel just right of the centre looks almost straight ahead: the image centre
    assert abs(float(grid[mid, mid, 0])) < 0.02 and abs(float(grid[mid, mid, 1])) < 0.03
    # longitude 45 degrees (half the 90-degree FOV) on the equator is the image's right edge
    col = round((45 + 90) / 180 * side - 0.5)
    lon = (col + 0.5) / side * math.pi - math.pi / 2
    expected = math.tan(lon) * intr.fx + intr.cx
    assert abs(float(grid[mid, col, 0]) - (expected / 200 * 2 - 1)) < 1e-3
    assert abs(expected - 200) < 4
    # beyond 90 degrees nothing is visible
    assert float(grid[mid, 0, 0]) < -1 or float(grid[mid, 0, 0]) > 1


@pytest.mark.parametrize("size", [(90, 160), (61, 83)])
def test_equirect_tables_give_grid_samples_pixels_within_one_level(size):
    h, w = size
    intr = Intrinsics.from_hfov(w, h, 70.0)
    grid = equirect_grid(intr, eye_side(intr))
    g = torch.Generator().manual_seed(0)
    views = torch.randint(0, 256, (2, 3, h, w), generator=g, dtype=torch.uint8)
    tables, exact = EquirectMap(grid, h, w)(views).int(), to_equirect(views, grid).int()
    assert tables.shape == exact.shape
    assert (tables - exact).abs().max() <= 1 and (tables != exact).float().mean() < 1e-3
    channels_last = views.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)  # as decoded
    assert torch.equal(EquirectMap(grid, h, w)(channels_last), tables.to(torch.uint8))
    with pytest.raises(ValueError, match="views must be uint8"):
        EquirectMap(grid, h, w)(views[..., :-1])


def test_equirect_tables_address_views_of_more_than_2_24_pixels():
    h, w = 8192, 2100                                      # 17.2 M pixels: float32 indices fail
    intr = Intrinsics.from_hfov(w, h, 70.0)
    grid = equirect_grid(intr, 128)
    views = torch.randint(0, 256, (1, 3, h, w), generator=torch.Generator().manual_seed(0),
                          dtype=torch.uint8)
    diff = EquirectMap(grid, h, w)(views).int() - to_equirect(views, grid).int()
    assert diff.abs().max() <= 1


def test_vr180_uses_the_spec_camera(tmp_path):
    src = tmp_path / "src.mp4"
    run_ffmpeg(["-y", "-f", "lavfi", "-i", "testsrc=size=160x90:rate=30", "-frames:v", "4",
                "-c:v", "libx264", "-pix_fmt", "yuv420p", str(src)], timeout_s=60, what="test source")
    path = render_vr180(src, tmp_path / "o.mp4", camera=CameraSpec(hfov_deg=120))
    side = eye_side(Intrinsics.from_hfov(160, 90, 120.0))
    assert (probe(path).width, probe(path).height) == (2 * side, side)
