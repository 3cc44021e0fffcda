"""Joining a real ``ray start`` cluster from `vdp run`: Ray's default auth (token on, token in
``~/.ray/auth_token``) works through ``RAY_ADDRESS`` alone; a wrong or missing token and an
address nobody answers on each give one clear line and a non-zero exit within seconds."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.conftest import MEDIA
from tests.engine.ray_head import base_env, start_head, stop_head
from benchmarks._local_cluster import RAY, free_port

#: A small real depth job (VDA Small, synthetic weights, tiny input) so the test stays quick.
SPEC = {"stages": {"depth": {"model": "vits", "input_size": 56, "max_res": 128, "mode": "stream",
                             "synthetic_weights": True}},
        "outputs": [{"kind": "depth_npz"}], "resources": {"threads": 1, "device": "cpu"}}


@pytest.fixture(scope="module")
def head():
    h = start_head()
    yield h
    stop_head(h)


def vdp_run(env: dict, tmp_path, timeout: float = 300) -> subprocess.CompletedProcess:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    return subprocess.run([sys.executable, "-m", "vdp.cli.main", "run", str(MEDIA / "av1_video.mkv"),
                           "--spec", str(spec), "--max-frames", "6", "--out", str(tmp_path / "out")],
                          env=env, capture_output=True, text=True, timeout=timeout)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("vdp: tests")
            and not line.startswith(f"vdp: {MEDIA}")]


def test_vdp_run_joins_a_default_auth_cluster_with_ray_address_only(head, tmp_path):
    proc = vdp_run(dict(head.env, RAY_ADDRESS=head.address), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["status"] == "succeeded" and report["runner"] == "ray" and report["frames"] == 6
    assert report["outputs"] == ["av1_video_depth.npz"]  # `vdp run` names outputs after the input


def test_token_from_the_environment_is_used(head, tmp_path):
    env = dict(base_env(tmp_path), RAY_ADDRESS=head.address, RAY_AUTH_TOKEN=head.token)
    proc = vdp_run(env, tmp_path)  # HOME has no token file: only the variable
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize("case", ["wrong", "missing", "unreachable"])
def test_connection_failure_is_one_clear_line(head, tmp_path, case):
    env = dict(base_env(tmp_path), RAY_ADDRESS=head.address)
    if case == "wrong":
        env["RAY_AUTH_TOKEN"] = "not-the-token"
    elif case == "unreachable":
        env["RAY_ADDRESS"] = f"127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    proc = vdp_run(env, tmp_path, timeout=60)
    took = time.monotonic() - t0
    lines = error_lines(proc.stderr)
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("vdp: error: ClusterConnectError:") and "Traceback" not in proc.stderr
    expected = {"wrong": "rejected the token from RAY_AUTH_TOKEN",
                "missing": "requires token authentication and no token was found",
                "unreachable": "cannot reach a Ray cluster"}[case]
    assert expected in lines[0] and ("RAY_AUTH_TOKEN" in lines[0] or case == "unreachable")
    assert took < 30  # Ray alone retries for 20 s after the imports
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["status"] == "failed" and "ClusterConnectError" in report["error"]


def test_ray_job_submit_runs_vdp_on_the_cluster(head, tmp_path):
    """The documented path: ``ray job submit`` to the dashboard with the token; the entrypoint
    (``vdp run``) runs on the head as the job's driver."""
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    out = tmp_path / "out"
    env = dict(base_env(tmp_path), RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=head.token)
    entry = (f"{sys.executable} -m vdp.cli.main run {MEDIA / 'av1_video.mkv'} --spec {spec} "
             f"--max-frames 6 --out {out}")
    proc = subprocess.run([str(RAY), "job", "submit", "--address", head.dashboard, "--", *entry.split()],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "succeeded" in proc.stdout.lower()
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "succeeded" and report["frames"] == 6 and report["runner"] == "ray"
    wrong = subprocess.run([str(RAY), "job", "list", "--address", head.dashboard],
                           env=dict(env, RAY_AUTH_TOKEN="not-the-token"), capture_output=True,
                           text=True, timeout=120)
    assert wrong.returncode != 0  # the dashboard really checks the token
