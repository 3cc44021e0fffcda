"""A Ray cluster on this machine for benchmarks and the multi-node test: ``ray start --head``
and (by default) a second ``ray start --address`` node, each with fake GPUs, token
authentication on.

Each node runs in a session of its own; `LocalCluster.stop` ends exactly the processes of those
sessions (never ``ray stop``, which would end every Ray instance of the machine's users).
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

RAY = Path(sys.executable).with_name("ray")
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _session(sid: int) -> list[int]:
    """Live (not zombie) processes of session `sid`."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
                if os.getsid(int(entry)) == sid and state != "Z":
                    out.append(int(entry))
            except OSError:
                continue
    return out


def stop_session(proc: subprocess.Popen, grace_s: float = 5.0) -> None:
    """Stop every process in the session `proc` leads (a node's daemons and workers): TERM,
    then KILL after `grace_s`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _session(proc.pid):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _session(proc.pid):
            time.sleep(0.1)
    proc.wait(timeout=30)


@dataclass
class LocalCluster:
    """One or two ``ray start`` nodes on this machine.

    Attributes:
        address: ``127.0.0.1:PORT`` of the head's GCS.
        token: The cluster's auth token (clients: ``RAY_AUTH_TOKEN``).
        procs: The ``ray start --block`` processes (session leaders), head first.
    """

    address: str
    token: str
    tmp: Path
    procs: list[subprocess.Popen] = field(default_factory=list)

    @classmethod
    def start(cls, *, cpus_per_node: int = 1, gpus_per_node: int = 1,
              object_store_mb: int = 1024, timeout_s: float = 90.0,
              env: dict[str, str] | None = None, nodes: int = 2) -> "LocalCluster":
        """Start the head, then (with `nodes` 2) the second node (`env`: extra environment for
        both), and wait until the head answers."""
        if nodes not in (1, 2):
            raise ValueError(f"nodes must be 1 or 2, got {nodes}")
        tmp = Path(tempfile.mkdtemp(prefix="vdpb", dir="/tmp"))  # short: socket paths must fit
        token = secrets.token_hex(16)
        extra = env or {}
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(extra)
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, RAY_USAGE_STATS_ENABLED="0",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        port = free_port()
        common = ["--block", f"--num-cpus={cpus_per_node}", f"--num-gpus={gpus_per_node}",
                  f"--object-store-memory={object_store_mb * 2**20}", "--disable-usage-stats"]
        cluster = cls(f"127.0.0.1:{port}", token, tmp)
        try:
            cluster.procs.append(subprocess.Popen(
                [str(RAY), "start", "--head", f"--port={port}", "--include-dashboard=false",
                 f"--ray-client-server-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}",
                 f"--temp-dir={tmp}", *common],
                env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            cluster._wait_head(timeout_s)
            if nodes == 2:
                cluster.procs.append(subprocess.Popen(
                    [str(RAY), "start", f"--address={cluster.address}",
                     f"--dashboard-agent-listen-port={free_port()}", *common],
                    env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _wait_head(self, timeout_s: float) -> None:
        from vdp.engine.cluster import _gcs_call

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.procs[0].poll() is not None:
                raise RuntimeError(f"ray start --head exited with {self.procs[0].returncode}")
            if _gcs_call(self.address, self.token, 1.0)[0] == "OK":
                return
            time.sleep(0.5)
        raise RuntimeError(f"the head at {self.address} did not come up in {timeout_s:g} s")

    def connect(self, nodes: int = 2, timeout_s: float = 90.0) -> None:
        """Join this cluster from this process (`vdp.engine.cluster.ensure_ray`, token auth)
        and wait until `nodes` nodes are alive."""
        import ray

        from vdp.engine.cluster import ensure_ray

        os.environ["RAY_AUTH_TOKEN"] = self.token
        ensure_ray(self.address)
        deadline = time.monotonic() + timeout_s
        while sum(n["Alive"] for n in ray.nodes()) < nodes:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {sum(n['Alive'] for n in ray.nodes())} of {nodes} nodes came up")
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError("a ray start process exited")
            time.sleep(0.3)

    def stop(self) -> None:
        """Stop every process of the nodes' sessions and remove their files."""
        for proc in reversed(self.procs):
            stop_session(proc)
        self.procs.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)
