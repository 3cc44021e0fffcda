"""Writing on the workers: each chunk's outputs are written beside its last stage, in parts that
are joined when the job succeeds; the result equals what the driver writes from every frame."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from torchcodec.decoders import VideoDecoder

from vdp.engine.job import run_job
from vdp.engine.plan import StagePlan
from vdp.errors import JobCancelledError
from vdp.io import read_webm_alpha
from vdp.spec import JobSpec
from tests.conftest import MEDIA
from tests.engine.stages_for_tests import ChunkAffineStage

CLIP = MEDIA / "decord__flipping_a_pancake.mkv"  # 426x240 with audio
FRAMES = 70
CHUNKING = {"enabled": True, "chunk_frames": 16, "overlap_frames": 8}
DEPTH_OUTPUTS = [{"kind": "depth_npy"}, {"kind": "depth_png16"}, {"kind": "depth_color_mp4"}]
MATTE_OUTPUTS = [{"kind": "foreground_webm"}, {"kind": "composite_mp4"}, {"kind": "rgba_png"}]


def spec(outputs: list[dict], on_workers: bool = True, stages: dict | None = None, **resources) -> JobSpec:
    return JobSpec.parse({"input": str(CLIP), "max_frames": FRAMES, "stages": stages or {"depth": {}},
                          "outputs": outputs,
                          "resources": {"batch_frames": 8, "replicas": {"depth": 2},
                                        "write_on_workers": on_workers, **resources},
                          "chunking": CHUNKING})


def plans(seconds: float = 0.0, tag: str = "ww"):
    return [StagePlan("depth", f"{tag}{seconds}", partial(ChunkAffineStage, 0.3, seconds), num_gpus=1.0)]


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def frames_of(path: Path) -> torch.Tensor:
    return VideoDecoder(str(path))[:].data


def streams(path: Path) -> list[str]:
    from vdp.io._ffmpeg import ffmpeg_exe

    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    return [line.strip() for line in out.splitlines() if "Stream #" in line]


@pytest.fixture(scope="module")
def driver_written(tmp_path_factory, ray_local):
    out = tmp_path_factory.mktemp("driver")
    report = run_job(spec(DEPTH_OUTPUTS, on_workers=False), out, plans=plans())
    assert report.placement["writing"] == {"on": "driver", "reason": "resources.write_on_workers is off"}
    return out


def test_chunk_parts_joined_equal_what_the_driver_writes(tmp_path, driver_written, fresh_actors):
    report = run_job(spec(DEPTH_OUTPUTS), tmp_path, plans=plans())
    assert report.placement["writing"]["on"] == "workers"
    assert report.placement["frames_to_driver"] is False
    # the merge is the same merge: 16-bit PNGs and float arrays are identical, bit for bit
    assert files(tmp_path / "depth_png16") == files(driver_written / "depth_png16")
    assert (json.loads((tmp_path / "depth_png16.json").read_text())
            == json.loads((driver_written / "depth_png16.json").read_text()))
    a = np.concatenate([np.load(p) for p in sorted((tmp_path / "depth_npy").iterdir())])
    b = np.concatenate([np.load(p) for p in sorted((driver_written / "depth_npy").iterdir())])
    assert a.shape == (FRAMES, 240, 426) and np.array_equal(a, b)
    assert all(abs(s["depth"]["scale"] - 1) > 1e-3 for s in report.chunks["seams"])  # real seams
    # the colour video: joined without re-encoding, every frame there, same colours within codec noise
    w, d = frames_of(tmp_path / "depth_color.mp4"), frames_of(driver_written / "depth_color.mp4")
    assert w.shape == d.shape == (FRAMES, 3, 240, 426)
    assert float((w.float() - d.float()).abs().mean()) < 4.0
    # every chunk wrote its own frames, beside the replica that ran it
    writes = report.chunks["writes"]
    assert [x["chunk"] for x in writes] == [0, 1, 2, 3] and sum(x["frames"] for x in writes) == FRAMES
    replica_nodes = {r["node_id"] for r in report.placement["replicas"]["depth"]}
    assert {x["node_id"] for x in writes} <= replica_nodes
    assert all(x["pid"] != os.getpid() for x in writes)
    writers = report.placement["writing"]["writers"]
    assert {(x["node_id"], x["pid"]) for x in writes} == {(w["node_id"], w["pid"]) for w in writers}
    assert all(w["cpu_seconds"] > 0 for w in writers)
    # results held for a map may borrow a share of the store; all of it is given back
    assert all(w["store_loan"]["limit"] > 0 and w["store_loan"]["used"] == 0 for w in writers)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["stages"]["write"]["frames_done"] == FRAMES
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".vdp", "depth_npy", "depth_png16", "depth_png16.json", "depth_color.mp4", "report.json", "spec.json"])
    assert not (tmp_path / ".vdp" / "parts").exists() and not (tmp_path / ".vdp" / "chunks").exists()


def test_videos_with_alpha_and_audio_are_joined_once(tmp_path, fresh_actors):
    stages = {"depth": {}, "matte": {}}
    report = run_job(spec(MATTE_OUTPUTS, stages=stages), tmp_path / "w", plans=plans())
    run_job(spec(MATTE_OUTPUTS, on_workers=False, stages=stages), tmp_path / "d", plans=plans())
    assert report.placement["writing"]["on"] == "workers"
    w, d = tmp_path / "w", tmp_path / "d"
    assert files(w / "rgba_png") == files(d / "rgba_png")
    webm = streams(w / "foreground.webm")
    assert len(webm) == 1 and "vp9" in webm[0]
    aw, ad = read_webm_alpha(w / "foreground.webm"), read_webm_alpha(d / "foreground.webm")
    assert aw.shape == ad.shape and aw.shape[0] == FRAMES  # alpha survived the join in every frame
    assert np.abs(aw.astype(int) - ad.astype(int)).mean() < 2.0

    composite = streams(w / "composite.mp4")
    assert sum("Audio" in s for s in composite) == 1 and sum("Video" in s for s in composite) == 1
    cw, cd = frames_of(w / "composite.mp4"), frames_of(d / "composite.mp4")
    assert cw.shape == cd.shape and float((cw.float() - cd.float()).abs().mean()) < 4.0


def test_killed_stage_actor_gives_identical_parts(tmp_path, fresh_actors):
    import ray

    reference = run_job(spec(DEPTH_OUTPUTS, replicas={"depth": 1}), tmp_path / "ref", plans=plans(0.05, "kw"))
    victim = reference.placement["replicas"]["depth"][0]["name"]
    old_pid = ray.get(ray.get_actor(victim, namespace="vdp").info.remote())["pid"]
    killed: list[int] = []

    def kill_mid_job(snapshot) -> None:
        done = {p.stage: p.frames_done for p in snapshot}
        if not killed and done["depth"] >= 24:
            os.kill(old_pid, signal.SIGKILL)
            killed.append(done["depth"])

    report = run_job(spec(DEPTH_OUTPUTS, replicas={"depth": 1}), tmp_path / "killed", plans=plans(0.05, "kw"),
                     progress=kill_mid_job)
    assert killed and report.chunks["retries"]
    assert report.status == "succeeded" and report.placement["writing"]["on"] == "workers"
    assert files(tmp_path / "killed" / "depth_png16") == files(tmp_path / "ref" / "depth_png16")
    assert frames_of(tmp_path / "killed" / "depth_color.mp4").shape[0] == FRAMES


class CancelAfterChunks(threading.Event):
    """Set once the ledger records `n` finished chunks."""

    def __init__(self, out: Path, n: int) -> None:
        super().__init__()
        self.path, self.n = out / ".vdp" / "ledger.jsonl", n

    def is_set(self) -> bool:
        return self.path.exists() and self.path.read_text().count('"done"') >= self.n


def test_cancelled_job_resumes_from_the_workers_kept_results(tmp_path, driver_written, fresh_actors):
    out = tmp_path / "job"
    with pytest.raises(JobCancelledError):
        run_job(spec(DEPTH_OUTPUTS), out, plans=plans(0.05), cancel=CancelAfterChunks(out, 2))
    assert not (out / ".vdp" / "parts").exists() or not any((out / ".vdp" / "parts").rglob("*.png"))
    assert not (out / "depth_png16").exists()
    report = run_job(spec(DEPTH_OUTPUTS), out, plans=plans(0.05), resume=True)
    assert report.status == "succeeded" and len(report.chunks["reused"]) >= 2
    assert report.placement["writing"]["on"] == "driver"  # kept chunks replay here
    assert files(out / "depth_png16") == files(driver_written / "depth_png16")
