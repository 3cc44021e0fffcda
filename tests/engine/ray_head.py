"""A real one-node Ray cluster started with ``ray start --head`` for cluster tests.

The head runs in a session of its own with its own ``HOME`` (so Ray's ``~/.ray/auth_token`` is
the test's), free ports, the dashboard (job submission) and a metrics export port; teardown
stops exactly that session's processes (never ``ray stop``).
"""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks._local_cluster import RAY, free_port, stop_session
from tests.engine.test_multinode import REPO


@dataclass
class RayHead:
    """A running head node.

    Attributes:
        address: ``127.0.0.1:PORT`` of its GCS.
        home: The ``HOME`` it runs with (holds ``.ray/auth_token``).
        token: The cluster's token (token auth is on: Ray's default once a token exists).
        dashboard: ``http://127.0.0.1:PORT`` of its dashboard (job submission).
        metrics_port: Port of the node's Prometheus metrics export.
        env: Environment for clients that should join it (token from the token file).
    """

    address: str
    home: Path
    token: str
    dashboard: str
    metrics_port: int
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None


def base_env(home: Path) -> dict[str, str]:
    """A client environment: no Ray auth variables, `home` as HOME, this checkout importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(home), RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=str(REPO),
               VDP_TEST_THREADS="1")
    return env


def start_head(*, num_cpus: int = 2, num_gpus: int = 2, timeout_s: float = 60.0) -> RayHead:
    """Start a head with Ray's default auth (a token exists in its ``~/.ray/auth_token``, so
    token authentication is on) and wait until it answers."""
    tmp = Path(tempfile.mkdtemp(prefix="vdph", dir="/tmp"))  # short: socket paths must fit
    home = tmp / "home"
    (home / ".ray").mkdir(parents=True)
    token = secrets.token_hex(16)
    (home / ".ray" / "auth_token").write_text(token)
    port, dash, metrics = free_port(), free_port(), free_port()
    env = base_env(home)
    proc = subprocess.Popen(
        [str(RAY), "start", "--head", "--block", f"--port={port}", f"--num-cpus={num_cpus}",
         f"--num-gpus={num_gpus}", "--disable-usage-stats", "--include-dashboard=true",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
         f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
         f"--metrics-export-port={metrics}", f"--ray-client-server-port={free_port()}",
         f"--runtime-env-agent-port={free_port()}", f"--temp-dir={tmp / 'ray'}"],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    head = RayHead(f"127.0.0.1:{port}", home, token, f"http://127.0.0.1:{dash}", metrics, env, proc)
    deadline = time.monotonic() + timeout_s
    from vdp.engine.cluster import ClusterConnectError, _gcs_call

    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited with {proc.returncode}")
        if _gcs_call(head.address, token, 1.0)[0] == "OK" and _http_answers(head.dashboard):
            return head
        time.sleep(0.5)
    stop_head(head)
    raise ClusterConnectError(f"the test head at {head.address} did not come up in {timeout_s:g} s")


def _http_answers(url: str) -> bool:
    """Whether the dashboard answers HTTP (any status: it requires the token)."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(f"{url}/api/version", timeout=1.0).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def stop_head(head: RayHead) -> None:
    """Stop every process of the head's session and remove its files."""
    if head.proc is not None:
        stop_session(head.proc)
    shutil.rmtree(head.home.parent, ignore_errors=True)
