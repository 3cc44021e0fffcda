"""Model actors give their GPUs back: after ``resources.actor_idle_s`` idle seconds, and on
``vdp actors release`` - on a real ``ray start`` cluster with 2 fake GPUs."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.engine.ray_head import start_head, stop_head
from tests.engine.test_multinode import REPO

DRIVER = """
import json, sys, time
sys.path.insert(0, {repo!r})
import ray, torch
torch.set_num_threads(1)
import tests.engine.stages_for_tests as stages
from vdp.engine.cluster import ensure_ray
from vdp.engine.job import run_job
from vdp.engine.lifecycle import actor_names
from tests.engine.test_seams import affine_plans, spec
ensure_ray()
ray.cloudpickle.register_pickle_by_value(stages)
gpus = lambda: ray.available_resources().get("GPU", 0.0)
out = {{"before": gpus()}}
report = run_job(spec(threads=1, actor_idle_s={idle}), {out!r}, plans=affine_plans())
out["status"], out["held"], out["names"] = report.status, gpus(), actor_names()
t0 = time.monotonic()
while {wait} and actor_names() and time.monotonic() - t0 < 60:
    time.sleep(0.2)
time.sleep(0.5)
out["gone_after_s"], out["after"], out["names_after"] = time.monotonic() - t0, gpus(), actor_names()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def head():
    h = start_head(num_cpus=2, num_gpus=2)
    yield h
    stop_head(h)


def driver(head, tmp_path, *, idle: float, wait: bool) -> dict:
    script = DRIVER.format(repo=str(REPO), out=str(tmp_path / "out"), idle=idle, wait=wait)
    proc = subprocess.run([sys.executable, "-c", script], env=dict(head.env, RAY_ADDRESS=head.address),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def vdp(head, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vdp.cli.main", "actors", *args],
                          env=dict(head.env, RAY_ADDRESS=head.address), capture_output=True,
                          text=True, timeout=120)


def test_an_idle_actor_is_released_after_its_timeout(head, tmp_path):
    r = driver(head, tmp_path, idle=3.0, wait=True)
    assert r["status"] == "succeeded" and r["before"] == 2.0
    assert r["held"] == 1.0 and len(r["names"]) == 1  # the job's actor kept its GPU after the job
    assert r["names_after"] == [] and r["after"] == 2.0  # ... until it had been idle for 3 s
    assert 1.0 < r["gone_after_s"] < 20.0


def test_vdp_actors_list_and_release(head, tmp_path):
    r = driver(head, tmp_path, idle=0, wait=False)  # no timeout: stays until released
    assert r["held"] == 1.0 and r["after"] == 1.0 and len(r["names_after"]) == 1
    name = r["names_after"][0]
    listed = vdp(head, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["name"] == name and row["state"] == "idle" and row["resources"]["GPU"] == 1.0
    assert row["idle_timeout_s"] is None and row["frames"] > 0
    bad = vdp(head, "release", "vdp:nope:0:0")
    assert bad.returncode == 2 and "no vdp actor named vdp:nope:0:0" in bad.stderr
    rel = vdp(head, "release", name)
    assert rel.returncode == 0 and rel.stdout.strip() == f"released {name}", rel.stderr
    check = subprocess.run(
        [sys.executable, "-c", "import ray; from vdp.engine.cluster import ensure_ray; ensure_ray(); "
         "print(ray.available_resources().get('GPU', 0.0))"],
        env=dict(head.env, RAY_ADDRESS=head.address), capture_output=True, text=True, timeout=120)
    assert check.stdout.strip().splitlines()[-1] == "2.0", check.stderr
    assert json.loads(vdp(head, "list", "--json").stdout) == []


def cluster_gpus_free(head) -> float:
    check = subprocess.run(
        [sys.executable, "-c", "import ray; from vdp.engine.cluster import ensure_ray; ensure_ray(); "
         "print(ray.available_resources().get('GPU', 0.0))"],
        env=dict(head.env, RAY_ADDRESS=head.address), capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr[-2000:]
    return float(check.stdout.strip().splitlines()[-1])


def test_the_gateway_releases_its_actors_on_shutdown(head, tmp_path):
    from tests.service.gateway import BEAR, TOKEN, Gateway, depth_spec, make_roots
    from vdp.client import Client

    roots = make_roots(tmp_path / "roots")
    gw = Gateway(tmp_path / "data", [roots["root"]], RAY_ADDRESS=head.address, HOME=str(head.home)).start()
    try:
        with Client(gw.url, token=TOKEN) as c:
            spec = depth_spec(BEAR, max_frames=8, resources={"device": "auto", "threads": 1, "batch_frames": 8})
            job = c.submit(BEAR, spec=spec).wait(timeout_s=240)
            assert job.state == "succeeded", gw.log_tail()
        assert cluster_gpus_free(head) == 1.0  # its depth actor holds a (fake) GPU between jobs
    finally:
        code = gw.stop()
    assert code in (0, -15), gw.log_tail()
    assert "released 1 idle model actor(s): vdp:depth:" in gw.log_tail()
    assert cluster_gpus_free(head) == 2.0
