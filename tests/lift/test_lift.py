"""`vdp lift` on a synthetic scene of known geometry (a wall, a floor and a box in front), its
depth written as EXR frames with a camera sidecar: boxes and points come back within 1% depth,
from JSON and MOT CSV, and what cannot be lifted is reported with its reason."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from vdp.cli.main import main
from vdp.lift.camera import Intrinsics
from vdp.lift.depth_source import DepthSourceError, open_depth
from vdp.lift.tracks import TracksError, read_tracks
from vdp.outputs.exr import write_exr

SRC_W, SRC_H = 320, 240          # the video the tracks refer to
W, H = 160, 120                  # depth resolution (half)
INTR = Intrinsics.from_hfov(W, H, 60.0, source="spec")
CAM_HEIGHT, WALL_Z = 1.5, 10.0
BOX = {"x": (-0.6, 0.4), "y": (-0.5, 0.5), "z": 4.0}   # a box face in camera space
FRAMES = 3


def scene(frame: int, rng: np.random.Generator) -> np.ndarray:
    """Depth of the scene in `frame` (the box moves 0.1 m right per frame)."""
    v, u = np.mgrid[0:H, 0:W] + 0.5
    depth = np.full((H, W), WALL_Z, dtype=np.float64)
    below = v > INTR.cy
    floor = np.where(below, CAM_HEIGHT * INTR.fy / np.maximum(v - INTR.cy, 1e-9), np.inf)
    depth = np.minimum(depth, floor)
    x = (u - INTR.cx) * BOX["z"] / INTR.fx - 0.1 * frame
    y = (v - INTR.cy) * BOX["z"] / INTR.fy
    inside = (x >= BOX["x"][0]) & (x <= BOX["x"][1]) & (y >= BOX["y"][0]) & (y <= BOX["y"][1])
    depth[inside] = BOX["z"]
    holes = inside & (rng.random((H, W)) < 0.2)  # sensor dropouts inside the object
    depth[holes] = np.nan
    return depth.astype(np.float32)


def box_pixels(frame: int, pad: float = 0.12) -> list[float]:
    """The box face's projection in source pixels, loosened by `pad` of its size each side."""
    s = SRC_W / W
    us = [(x + 0.1 * frame) * INTR.fx / BOX["z"] + INTR.cx for x in BOX["x"]]
    vs = [y * INTR.fy / BOX["z"] + INTR.cy for y in BOX["y"]]
    pw, ph = (us[1] - us[0]) * pad, (vs[1] - vs[0]) * pad
    return [(us[0] - pw) * s, (vs[0] - ph) * s, (us[1] + pw) * s, (vs[1] + ph) * s]


@pytest.fixture()
def job_dir(tmp_path):
    out = tmp_path / "job"
    exr = out / "clip_depth_exr"
    exr.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for f in range(FRAMES):
        write_exr(str(exr / f"depth_{f:06d}.exr"), scene(f, rng))
    INTR.write_json(out / "clip_depth_exr.json", depth_kind="metric", unit="metres", frames=FRAMES,
                    first_frame=0, source_size=[SRC_W, SRC_H])
    return out


def floor_point(row: int, col: int) -> tuple[list[float], tuple[float, float, float]]:
    """A point on the floor at depth pixel (row, col): source coordinates and its true XYZ."""
    v, u = row + 0.5, col + 0.5
    z = CAM_HEIGHT * INTR.fy / (v - INTR.cy)
    return [u * SRC_W / W, v * SRC_H / H], ((u - INTR.cx) * z / INTR.fx, CAM_HEIGHT, z)


def test_boxes_and_points_lift_within_one_percent(tmp_path, job_dir, capsys):
    dets = [{"frame": f, "id": 1, "box": box_pixels(f)} for f in range(FRAMES)]
    point, truth = floor_point(110, 30)
    dets += [{"frame": 1, "id": "mark", "point": point},
             {"frame": 2, "id": 1, "box": [-50, -50, -10, -10]},      # off screen
             {"frame": 7, "id": 1, "box": box_pixels(0)}]             # no depth for frame 7
    tracks = tmp_path / "tracks.json"
    tracks.write_text(json.dumps({"image_size": [SRC_W, SRC_H], "detections": dets}))
    assert main(["lift", str(tracks), "--depth", str(job_dir), "--csv", str(tmp_path / "xyz.csv")]) == 0
    doc = json.loads((tmp_path / "tracks_3d.json").read_text())
    boxes = [r for r in doc["lifted"] if r["type"] == "box"]
    assert [r["frame"] for r in boxes] == [0, 1, 2]
    for r in boxes:
        assert abs(r["z"] - BOX["z"]) / BOX["z"] < 0.01  # the loose box's wall/floor stays out
        centre_x = (BOX["x"][0] + BOX["x"][1]) / 2 + 0.1 * r["frame"]
        assert r["x"] == pytest.approx(centre_x, abs=0.01 * BOX["z"])
        assert r["y"] == pytest.approx(0.0, abs=0.01 * BOX["z"])
        assert r["valid_fraction"] < 1.0  # the dropouts were seen and left out
    (mark,) = [r for r in doc["lifted"] if r["id"] == "mark"]
    assert abs(mark["z"] - truth[2]) / truth[2] < 0.01
    assert mark["x"] == pytest.approx(truth[0], rel=0.01) and mark["y"] == pytest.approx(truth[1], rel=0.01)
    assert doc["summary"]["skipped_by_reason"] == {"outside the image": 1, "no depth for this frame": 1}
    assert doc["intrinsics"]["fx"] == pytest.approx(INTR.fx)
    rows = (tmp_path / "xyz.csv").read_text().splitlines()
    assert rows[0] == "frame,id,x,y,z" and len(rows) == 1 + 4
    assert "skipped 1: outside the image" in capsys.readouterr().err


def test_mot_csv_gives_the_same_depths(tmp_path, job_dir):
    lines = []
    for f in range(FRAMES):
        x1, y1, x2, y2 = box_pixels(f)
        lines.append(f"{f + 1},5,{x1:.3f},{y1:.3f},{x2 - x1:.3f},{y2 - y1:.3f},1,-1,-1,-1")
    mot = tmp_path / "gt.txt"
    mot.write_text("\n".join(lines) + "\n")
    assert main(["lift", str(mot), "--depth", str(job_dir), "--out", str(tmp_path / "o.json")]) == 0
    doc = json.loads((tmp_path / "o.json").read_text())
    assert [r["frame"] for r in doc["lifted"]] == [0, 1, 2] and {r["id"] for r in doc["lifted"]} == {"5"}
    assert all(abs(r["z"] - 4.0) < 0.04 for r in doc["lifted"])


def test_too_few_valid_samples_is_skipped(tmp_path, job_dir):
    exr = job_dir / "clip_depth_exr" / "depth_000000.exr"
    write_exr(str(exr), np.full((H, W), np.nan, dtype=np.float32))
    tracks = tmp_path / "t.json"
    tracks.write_text(json.dumps({"detections": [{"frame": 0, "id": 1, "box": box_pixels(0)}]}))
    assert main(["lift", str(tracks), "--depth", str(job_dir)]) == 0
    doc = json.loads((tmp_path / "t_3d.json").read_text())
    assert doc["lifted"] == [] and doc["skipped"][0]["reason"] == "too few valid depth samples"


def test_bad_inputs_are_named(tmp_path, job_dir, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"detections": [{"frame": 0, "id": 1, "box": [5, 5, 1, 1]}]}))
    with pytest.raises(TracksError, match=r"detections\[0\]: box needs x2 > x1"):
        read_tracks(bad)
    mot = tmp_path / "m.txt"
    mot.write_text("1,2,three,4,5,6\n")
    with pytest.raises(TracksError, match="line 1 is not MOT CSV"):
        read_tracks(mot)
    assert main(["lift", str(bad), "--depth", str(job_dir)]) == 1
    assert "TracksError" in capsys.readouterr().err
    side = json.loads((job_dir / "clip_depth_exr.json").read_text())
    side["depth_kind"] = "relative"
    (job_dir / "clip_depth_exr.json").write_text(json.dumps(side))
    with pytest.raises(DepthSourceError, match="relative depth"):
        open_depth(job_dir)
    with pytest.raises(DepthSourceError, match="no depth_exr folder"):
        open_depth(tmp_path)


def test_lift_from_a_real_jobs_npz(tmp_path):
    """A metric job on an encoded video (synthetic weights) then `vdp lift` on its NPZ: the depth is
    the median of the window read straight from the NPZ, the intrinsics the spec's camera scaled to
    the depth's size."""
    from tests.conftest import MEDIA
    from vdp.engine.job import run_job
    from vdp.spec import JobSpec

    out = tmp_path / "job"
    run_job(JobSpec.parse({
        "input": str(MEDIA / "sam2__bedroom.mp4"), "max_frames": 2, "camera": {"fx": 800.0},
        "stages": {"depth": {"model": "metric_vits", "input_size": 56, "synthetic_weights": True}},
        "outputs": [{"kind": "depth_npz"}], "resources": {"device": "cpu"}}), out, local=True)
    depth = np.load(out / "depth.npz")["depth"]
    h, w = depth.shape[1:]
    sx, sy = w / 960, h / 540  # the source is 960x540
    tracks = tmp_path / "t.json"
    tracks.write_text(json.dumps({"detections": [{"frame": 1, "id": 1, "point": [480.0, 270.0]}]}))
    assert main(["lift", str(tracks), "--depth", str(out), "--point-radius", "1"]) == 0
    (r,) = json.loads((tmp_path / "t_3d.json").read_text())["lifted"]
    cu, cv = math.floor(480 * sx), math.floor(270 * sy)
    assert r["z"] == pytest.approx(float(np.median(depth[1, cv - 1:cv + 2, cu - 1:cu + 1 + 1])), rel=1e-6)
    fx = 800.0 * sx
    assert r["x"] == pytest.approx((480 * sx - w / 2) * r["z"] / fx, abs=1e-6)
