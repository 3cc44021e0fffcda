"""A real gateway for tests: `python -m vdp.service` on 127.0.0.1 with its own local Ray."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import MEDIA

TOKEN = "test-token-0123456789abcdef"
BEAR = "androidx__bear-vp9-odd-dimensions.webm"  # 161x121, 30 frames
LONG = "var_fps_video.mp4"                        # 128x128, 300 frames
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def depth_spec(input: str, **top: object) -> dict:
    """The smallest real job: VDA-S with synthetic weights at input size 56, NPZ output."""
    spec = {
        "input": input,
        "stages": {"depth": {"model": "vits", "input_size": 56, "synthetic_weights": True}},
        "outputs": [{"kind": "depth_npz"}],
        "resources": {"device": "cpu", "threads": 1, "batch_frames": 8},
    }
    spec.update(top)
    return spec


def make_roots(base: Path) -> dict[str, Path]:
    """An input root with two clips and a symlink that escapes it, and a file outside it."""
    root, outside = base / "inputs", base / "outside"
    root.mkdir(parents=True)
    outside.mkdir()
    for name in (BEAR, LONG):
        shutil.copy(MEDIA / name, root / name)
    shutil.copy(MEDIA / BEAR, outside / "secret.webm")
    (root / "escape.webm").symlink_to(outside / "secret.webm")
    (root / "not_a_video.txt").write_text("hello")
    return {"root": root, "outside": outside}


class Gateway:
    """Starts and stops one gateway process (in its own session, so its Ray goes with it).

    Args:
        data_dir: The gateway's data directory (reuse it to simulate a restart).
        roots: Input roots.
        env: Extra ``VDP_*`` settings.
    """

    def __init__(self, data_dir: Path, roots: list[Path], **env: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"gateway-{self.port}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("VDP_", "RAY_ADDRESS"))}
        self.env.update({
            "VDP_DATA_DIR": str(data_dir), "VDP_INPUT_ROOTS": os.pathsep.join(map(str, roots)),
            "VDP_API_TOKEN": TOKEN, "VDP_READY_PRESETS": "", "VDP_SSE_INTERVAL_S": "0.1",
            "VDP_SHUTDOWN_GRACE_S": "30", "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(REPO), **env,
        })
        self.proc: subprocess.Popen | None = None

    def launch(self) -> subprocess.Popen:
        """Start the process (without waiting for anything)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vdp.service", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "info"],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()
        return self.proc

    def start(self, timeout_s: float = 120.0) -> "Gateway":
        """Start and wait until Ray is connected (``/readyz`` says ``ray: true``)."""
        self.launch()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).json().get("ray"):
                    return self
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"gateway not ready within {timeout_s} s:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 90.0) -> int | None:
        """SIGTERM (graceful: running jobs are queued again), SIGKILL of the group if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(timeout=30)

    def log_tail(self, n: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n:] if self.log_path.exists() else ""

    def http(self, token: str | None = TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)
