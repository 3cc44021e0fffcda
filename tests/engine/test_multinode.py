"""Multi-node: a real 2-node Ray cluster on this machine (fake GPUs), one chunked job across both.

The test starts ``ray start --head`` and a second ``ray start --address ...`` node
(`benchmarks._local_cluster.LocalCluster`: each in a session of its own, here with 2 CPUs and 2
fake GPUs, token auth on with a token made for the test), runs the job from a driver process
connected to that cluster, and tears down exactly the processes it started: every process in
those two sessions (never ``ray stop``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from benchmarks._local_cluster import LocalCluster
from vdp.engine.job import run_job
from vdp.engine.plan import StagePlan
from tests.engine.stages_for_tests import ChunkAffineStage
from tests.engine.test_seams import spec

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def two_node_cluster():
    cluster = LocalCluster.start(cpus_per_node=2, gpus_per_node=2)
    try:
        yield cluster.address, dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=cluster.token,
                                    RAY_USAGE_STATS_ENABLED="0")
    finally:
        cluster.stop()


DRIVER = """
import json, sys, time
sys.path.insert(0, {repo!r})
import ray, torch
torch.set_num_threads(1)
import tests.engine.stages_for_tests as stages
from tests.engine.test_multinode import job_on_cluster
for _ in range(120):
    try:
        ray.init(address={address!r}, namespace="vdp", logging_level="ERROR")
        break
    except Exception:
        time.sleep(0.5)
ray.cloudpickle.register_pickle_by_value(stages)
deadline = time.monotonic() + 60
while sum(n["Alive"] for n in ray.nodes()) < 2 and time.monotonic() < deadline:
    time.sleep(0.2)
print(json.dumps(job_on_cluster({out!r})))
"""


#: Outputs written in parts where each chunk ran (`vdp.outputs.parts`).
OUTPUTS = [{"kind": "depth_npy"}, {"kind": "depth_png16"}, {"kind": "depth_color_mp4"}]


def plans():
    return [StagePlan("depth", "mn", partial(ChunkAffineStage, 0.3), num_gpus=1.0)]


def job_on_cluster(out: str) -> dict:
    """Run in the driver process: a chunked job on 4 replicas, one per fake GPU of 2 nodes."""
    import ray

    chunking = {"enabled": True, "chunk_frames": 16, "overlap_frames": 8}
    report = run_job(spec(chunking, replicas={"depth": 4}, threads=1, outputs=OUTPUTS), out, plans=plans())
    return {"nodes": [n["NodeID"] for n in ray.nodes() if n["Alive"]],
            "replicas": report.placement["replicas"]["depth"], "runs": report.chunks["runs"],
            "writes": report.chunks["writes"], "writing": report.placement["writing"],
            "status": report.status, "driver": {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id()}}


def test_job_runs_across_a_two_node_cluster(tmp_path, two_node_cluster):
    address, env = two_node_cluster
    script = DRIVER.format(repo=str(REPO), address=address, out=str(tmp_path / "out"))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["status"] == "succeeded" and len(result["nodes"]) == 2
    used = {r["node_id"] for r in result["replicas"] if r["chunks"]}
    assert used == set(result["nodes"]), result["replicas"]  # chunks ran on both nodes
    # each chunk was decoded by the actor (node and process) that ran it, never by the driver
    where = {r["name"]: (r["node_id"], r["pid"]) for r in result["replicas"]}
    for run in result["runs"]:
        assert run["decode"]["on"] == "worker", run
        assert (run["decode"]["node_id"], run["decode"]["pid"]) == where[run["actors"]["depth"]], run
    assert {run["decode"]["node_id"] for run in result["runs"]} == set(result["nodes"])
    assert result["driver"]["pid"] not in {run["decode"]["pid"] for run in result["runs"]}
    # ... and written on the node that ran it, by that node's writer (never the driver)
    assert result["writing"]["on"] == "workers"
    ran_on = {run["chunk"]: where[run["actors"]["depth"]][0] for run in result["runs"]}
    writers = {(w["node_id"], w["pid"]) for w in result["writing"]["writers"]}
    assert len(result["writes"]) == len(ran_on)
    for w in result["writes"]:
        assert w["node_id"] == ran_on[w["chunk"]] and (w["node_id"], w["pid"]) in writers, w
    assert {w["node_id"] for w in result["writes"]} == set(result["nodes"])
    assert result["driver"]["pid"] not in {w["pid"] for w in result["writes"]}
    run_job(spec(threads=1, outputs=OUTPUTS), tmp_path / "seq", local=True, plans=plans())
    a = np.concatenate([np.load(p) for p in sorted((tmp_path / "out" / "depth_npy").iterdir())])
    b = np.concatenate([np.load(p) for p in sorted((tmp_path / "seq" / "depth_npy").iterdir())])
    assert a.shape == b.shape and np.abs(a - b).max() / np.abs(b).max() < 1e-3
    assert len(list((tmp_path / "out" / "depth_png16").iterdir())) == len(a)
