"""Resume: a job whose driver died continues from its ledger; finished chunks never run again."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from vdp.engine.job import run_job
from vdp.engine.plan import StagePlan
from vdp.errors import JobCancelledError, SpecError
from vdp.spec import JobSpec
from tests.conftest import MEDIA
from tests.engine.stages_for_tests import ChunkAffineStage

CLIP = MEDIA / "decord__flipping_a_pancake.mkv"
REPO = Path(__file__).resolve().parents[2]


def spec(**resources) -> JobSpec:
    return JobSpec.parse({
        "input": str(CLIP), "max_frames": 80, "stages": {"depth": {}},
        "outputs": [{"kind": "depth_npz"}, {"kind": "depth_png16"}, {"kind": "depth_color_mp4"}],
        "resources": {"batch_frames": 8, "threads": 1, **resources},
        "chunking": {"enabled": True, "chunk_frames": 16, "overlap_frames": 8}})


def plans(seconds: float = 0.0):
    return [StagePlan("depth", f"resume{seconds}", partial(ChunkAffineStage, 0.3, seconds), num_gpus=1.0)]


def ledger(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / ".vdp" / "ledger.jsonl").read_text().splitlines()]


def runs(events: list[dict]) -> list[str]:
    return [e["run"] for e in events if e["event"] == "run"]


def assert_no_chunk_ran_twice(events: list[dict], n_chunks: int) -> set[int]:
    """Every chunk has exactly one kept ``done``; none was started after its ``done``.

    Returns:
        The chunks the first driver finished (and the second never started).
    """
    first, second = runs(events)[:2]
    done = [e["chunk"] for e in events if e["event"] == "done" and e["kept"]]
    assert sorted(done) == list(range(n_chunks)), f"chunks done: {sorted(done)}"
    finished_first = {e["chunk"] for e in events if e["event"] == "done" and e["run"] == first}
    started_second = {e["chunk"] for e in events if e["event"] == "start" and e["run"] == second}
    assert finished_first and not finished_first & started_second
    assert [e for e in events if e["event"] == "run"][1]["reused"] == sorted(finished_first)
    return finished_first


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference")
    run_job(spec(), out, local=True, plans=plans())
    return out


def depth(out: Path) -> np.ndarray:
    return np.load(out / "depth.npz")["depth"]


class CancelAfterChunks(threading.Event):
    """A cancel event that is set once the job's ledger records `n` finished chunks
    (the job checks it before every batch, so the stop point is deterministic)."""

    def __init__(self, out: Path, n: int) -> None:
        super().__init__()
        self.path, self.n = out / ".vdp" / "ledger.jsonl", n

    def is_set(self) -> bool:
        if not self.path.exists():
            return self.n == 0
        return sum('"done"' in line for line in self.path.read_text().splitlines()) >= self.n


def test_driver_killed_mid_job_resumes_without_rerunning_finished_chunks(tmp_path, reference):
    out = tmp_path / "job"
    script = (f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
              "import torch; torch.set_num_threads(1)\n"
              "from tests.engine.test_resume import spec, plans\n"
              "from vdp.engine.job import run_job\n"
              f"run_job(spec(), {str(out)!r}, local=True, plans=plans(0.1))\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            path = out / ".vdp" / "ledger.jsonl"
            if path.exists() and sum('"done"' in line for line in path.read_text().splitlines()) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"driver ended before it could be killed: {proc.stderr.read()!r}"
        os.kill(proc.pid, signal.SIGKILL)  # the driver dies: no cleanup runs
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not (out / "depth.npz").exists() and not (out / "report.json").exists()
    assert any(p.name.startswith(".depth") for p in out.iterdir())  # the dead writers' temps

    report = run_job(spec(), out, local=True, plans=plans(), resume=True)
    assert report.status == "succeeded" and report.resumed and report.frames == 80
    assert np.array_equal(depth(out), depth(reference))
    finished = assert_no_chunk_ran_twice(ledger(out), 5)
    assert report.chunks["reused"] == sorted(finished)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [".vdp", "depth.npz", "depth_png16", "depth_png16.json", "depth_color.mp4", "report.json", "spec.json"])


def test_cancelled_ray_job_resumes_on_its_replicas(tmp_path, reference, ray_local):
    out = tmp_path / "job"
    with pytest.raises(JobCancelledError):
        run_job(spec(replicas={"depth": 2}), out, plans=plans(0.05), cancel=CancelAfterChunks(out, 2))
    assert json.loads((out / "report.json").read_text())["status"] == "cancelled"
    report = run_job(spec(replicas={"depth": 2}), out, plans=plans(0.05), resume=True)
    assert np.array_equal(depth(out), depth(reference))
    assert_no_chunk_ran_twice(ledger(out), 5)
    assert report.resumed and report.status == "succeeded"


def test_damaged_chunk_results_are_computed_again(tmp_path, reference):
    out = tmp_path / "job"
    with pytest.raises(JobCancelledError):
        run_job(spec(), out, local=True, plans=plans(), cancel=CancelAfterChunks(out, 2))
    kept = sorted((out / ".vdp" / "chunks" / "c00000").iterdir())
    kept[0].write_bytes(kept[0].read_bytes()[:100])  # torn by a crash
    run_job(spec(), out, local=True, plans=plans(), resume=True)
    assert np.array_equal(depth(out), depth(reference))
    events = ledger(out)
    second = runs(events)[1]
    assert {"chunk": 0, "run": second} in [{"chunk": e["chunk"], "run": e["run"]} for e in events if e["event"] == "start"]
    assert 0 not in [e for e in events if e["event"] == "run"][1]["reused"]


def test_resuming_a_finished_job_returns_its_report(tmp_path):
    run_job(spec(), tmp_path, local=True, plans=plans())
    n_events = len(ledger(tmp_path))
    report = run_job(spec(), tmp_path, local=True, plans=plans(), resume=True)
    assert report.status == "succeeded" and report.frames == 80 and not report.resumed
    assert len(ledger(tmp_path)) == n_events  # nothing ran


def test_resume_refuses_a_different_job(tmp_path):
    with pytest.raises(JobCancelledError):
        run_job(spec(), tmp_path, local=True, plans=plans(), cancel=CancelAfterChunks(tmp_path, 0))
    other = spec().model_copy(update={"max_frames": 60})
    with pytest.raises(SpecError, match="holds a different job"):
        run_job(other, tmp_path, local=True, plans=plans(), resume=True)


def test_cli_resume_continues_the_saved_job(tmp_path, capsys):
    from vdp.cli.main import main

    job = JobSpec.parse({"input": str(MEDIA / "androidx__bear-vp9-odd-dimensions.webm"),
                         "stages": {"depth": {"model": "vits", "input_size": 28, "synthetic_weights": True}},
                         "outputs": [{"kind": "depth_npz"}], "resources": {"batch_frames": 8, "threads": 1},
                         "chunking": {"enabled": True, "chunk_frames": 16, "overlap_frames": 4}})
    with pytest.raises(JobCancelledError):
        run_job(job, tmp_path, local=True, cancel=CancelAfterChunks(tmp_path, 1))
    assert main(["run", "--resume", str(tmp_path), "--local"]) == 0
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["status"] == "succeeded" and saved["resumed"] and saved["frames"] == 30
    assert saved["chunks"]["reused"] == [0]
    assert main(["run", "--resume", str(tmp_path / "nowhere")]) == 2
    assert main(["run", "clip.mp4", "--resume", str(tmp_path)]) == 2
    assert "drop clip.mp4" in capsys.readouterr().err
