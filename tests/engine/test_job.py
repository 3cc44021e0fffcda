"""run_job end to end on a real clip: decode, stages, outputs, spec.json and report.json."""
from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest
import torch

from vdp.engine.job import run_job
from vdp.engine.plan import StagePlan
from vdp.errors import DecodeError
from vdp.io import iter_batches
from vdp.spec import JobSpec
from tests.conftest import MEDIA
from tests.engine.stages_for_tests import GrayEmaStage

CLIP = MEDIA / "androidx__bear-vp9-odd-dimensions.webm"  # 161x121, 30 frames


def depth_spec(**extra) -> JobSpec:
    return JobSpec.parse({"input": str(CLIP), "stages": {"depth": {"model": "vits"}},
                          "outputs": [{"kind": "depth_npz"}, {"kind": "depth_png16"},
                                      {"kind": "depth_color_mp4"}], "resources": {"batch_frames": 7},
                          **extra})


def ema_plans():
    return [StagePlan("depth", "ema", partial(GrayEmaStage, 0.8))]


def expected_depth() -> torch.Tensor:
    stage, state, out = GrayEmaStage(0.8), None, []
    for b in iter_batches(CLIP, batch_frames=30):
        res, state = stage.process(b, state)
        out.append(res.layers["depth"])
    return torch.cat(out)


@pytest.mark.parametrize("local", [True, False])
def test_job_writes_outputs_spec_and_report(tmp_path, local, request):
    if not local:
        request.getfixturevalue("ray_local")
    report = run_job(depth_spec(), tmp_path, local=local, plans=ema_plans())
    assert report.status == "succeeded" and report.frames == 30
    depth = np.load(tmp_path / "depth.npz")["depth"]
    np.testing.assert_array_equal(depth, expected_depth().numpy())
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["status"] == "succeeded"
    assert saved["stages"]["depth"]["frames_done"] == 30 and saved["stages"]["write"]["frames_done"] == 30
    assert saved["input"]["width"] == 161 and saved["input"]["height"] == 121
    assert JobSpec.parse(json.loads((tmp_path / "spec.json").read_text())) == depth_spec()
    assert sorted(report.outputs) == ["depth.npz", "depth_color.mp4", "depth_png16"]


def test_ray_and_local_jobs_write_identical_depth(tmp_path, ray_local):
    run_job(depth_spec(), tmp_path / "local", local=True, plans=ema_plans())
    run_job(depth_spec(), tmp_path / "ray", local=False, plans=ema_plans())
    a = np.load(tmp_path / "local" / "depth.npz")["depth"]
    b = np.load(tmp_path / "ray" / "depth.npz")["depth"]
    np.testing.assert_array_equal(a, b)


def test_max_frames_limits_the_job(tmp_path):
    report = run_job(depth_spec(max_frames=10), tmp_path, local=True, plans=ema_plans())
    assert report.frames == 10
    assert np.load(tmp_path / "depth.npz")["depth"].shape == (10, 121, 161)


def test_broken_input_fails_with_report_and_no_outputs(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    spec = depth_spec().model_copy(update={"input": str(bad)})
    with pytest.raises(DecodeError):
        run_job(spec, tmp_path / "out", local=True, plans=ema_plans())
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["status"] == "failed" and "DecodeError" in report["error"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.json", "spec.json"]


def test_a_local_jobs_decode_time_is_the_decoding_threads_not_the_wait(tmp_path, monkeypatch):
    """Decoded ahead while the stage computes, batches are ready when asked for: the progress
    reports the time decoding took (here at least the 30 ms each batch sleeps), not ~0."""
    import time

    from vdp.engine import kept_sources
    from tests.engine.stages_for_tests import ChunkAffineStage

    real = kept_sources.kept_batches

    def slow_batches(*args, **kwargs):
        for batch in real(*args, **kwargs):
            time.sleep(0.03)
            yield batch

    monkeypatch.setattr(kept_sources, "kept_batches", slow_batches)
    spec = JobSpec.parse({"input": str(CLIP), "stages": {"depth": {}}, "outputs": [{"kind": "depth_npz"}],
                          "resources": {"batch_frames": 5}})
    plans = [StagePlan("depth", "slow-affine", partial(ChunkAffineStage, 0.3, 0.15))]
    report = run_job(spec, tmp_path, local=True, plans=plans)
    decode = report.stages["decode"]
    assert decode["frames_done"] == 30
    assert decode["busy_seconds"] >= 6 * 0.03  # 6 batches; waiting for them took ~0 after the first
    assert decode["busy_fps"] < 30 / (6 * 0.03)
