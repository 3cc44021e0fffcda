"""After a job on a real ``ray start`` cluster, the node's Prometheus export (its
``--metrics-export-port``) has vdp's series, tagged with the job, stage, replica and node."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.engine.ray_head import start_head, stop_head
from tests.engine.test_cluster_lifecycle import DRIVER
from tests.engine.test_multinode import REPO
from tests.engine.test_seams import FRAMES

SERIES = re.compile(r"^(\w+)\{(.*)\} (\S+)$")


@pytest.fixture(scope="module")
def head():
    h = start_head(num_cpus=2, num_gpus=2)
    yield h
    stop_head(h)


def scrape(port: int) -> list[tuple[str, dict[str, str], float]]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out = []
    for line in text.splitlines():
        m = SERIES.match(line)
        if m and m.group(1).startswith("ray_vdp_"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
            out.append((m.group(1), labels, float(m.group(3))))
    return out


def test_job_metrics_reach_the_nodes_prometheus_export(head, tmp_path):
    script = DRIVER.format(repo=str(REPO), out=str(tmp_path / "out"), idle=0, wait=False) + (
        "\nprint(json.dumps({'job': ray.get_runtime_context().get_job_id(),"
        " 'node': ray.get_runtime_context().get_node_id()}))")
    proc = subprocess.run([sys.executable, "-c", script], env=dict(head.env, RAY_ADDRESS=head.address),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    result, ids = json.loads(lines[-2]), json.loads(lines[-1])
    assert result["status"] == "succeeded"
    (actor,) = result["names"]
    wanted = {"ray_vdp_stage_frames_total", "ray_vdp_stage_busy_seconds_total", "ray_vdp_stage_fps",
              "ray_vdp_driver_frames_total", "ray_vdp_driver_fps", "ray_vdp_batches_in_flight",
              "ray_vdp_object_store_bytes_in_flight"}
    deadline, series = time.monotonic() + 90, []
    while time.monotonic() < deadline:  # the agent exports every few seconds
        series = scrape(head.metrics_port)
        counted = [v for name, _, v in series if name == "ray_vdp_stage_frames_total"]
        if wanted <= {name for name, _, _ in series} and counted == [FRAMES]:
            break  # the last export after the job's end (values lag a few seconds)
        time.sleep(2)
    by_name: dict[str, list] = {}
    for name, labels, value in series:
        by_name.setdefault(name, []).append((labels, value))
    assert wanted <= set(by_name), sorted(by_name)
    (frames,) = by_name["ray_vdp_stage_frames_total"]
    assert frames[0]["job"] == ids["job"] and frames[0]["stage"] == "depth"
    assert frames[0]["replica"] == actor and frames[0]["node"] == ids["node"]
    assert frames[1] == FRAMES  # every frame of the job went through the one replica
    ((busy_labels, busy),) = by_name["ray_vdp_stage_busy_seconds_total"]
    assert busy_labels["replica"] == actor and 0 < busy < 60
    ((_, fps),) = by_name["ray_vdp_stage_fps"]
    assert fps > 0
    driver = {labels["stage"]: value for labels, value in by_name["ray_vdp_driver_frames_total"]
              if labels["job"] == ids["job"]}
    assert driver["write"] == FRAMES and driver["depth"] == FRAMES
    fps_stages = {labels["stage"] for labels, _ in by_name["ray_vdp_driver_fps"]}
    assert "write" in fps_stages  # encode fps
    # in flight: the driver's job tags them; all batches came back by the job's end
    in_flight = {name: [(labels, value) for labels, value in by_name[name] if labels["job"] == ids["job"]]
                 for name in ("ray_vdp_batches_in_flight", "ray_vdp_object_store_bytes_in_flight")}
    assert all(len(v) == 1 and v[0][0]["node"] == ids["node"] and v[0][1] >= 0 for v in in_flight.values())
