"""benchmarks/_cpu_roles.py: threads are charged to the role their name (or their starter) says."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks._cpu_roles import RoleSampler, name_native_threads, thread_role

CHILD = """
import sys, threading, time
sys.path.insert(0, {root!r})
from benchmarks._cpu_roles import name_native_threads
name_native_threads()

def spin(seconds):
    t = time.thread_time()
    while time.thread_time() - t < seconds:
        pass

def decoder():  # a decode thread that starts a helper thread: the helper is decode work too
    h = threading.Thread(target=spin, args=(0.4,), name="vdp-deadline: decoding")
    h.start(); h.join()

sys.stdin.readline()
threads = [threading.Thread(target=decoder, name="vdp-worker-decode"),
           threading.Thread(target=spin, args=(0.3,), name="vdp-writer")]
for t in threads: t.start()
for t in threads: t.join()
spin(0.2)  # the main thread: the process's default role
print("done", flush=True)
sys.stdin.readline()
"""


def test_thread_role_names():
    assert thread_role("vdp-worker-deco", "stage") == "decode"
    assert thread_role("vdp-decode-c3", "driver") == "decode"
    assert thread_role("vdp-writer", "stage") == "write"
    assert thread_role("decod:vdp-deadl", "stage") == "decode"
    assert thread_role("ray::StageActor", "stage") == "stage"


def test_roles_of_a_watched_process_including_exited_threads():
    root = str(Path(__file__).resolve().parents[2])
    proc = subprocess.Popen([sys.executable, "-c", CHILD.format(root=root)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # imported and idle
        sampler = RoleSampler({proc.pid: "stage"}, interval_s=0.05)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "done"
        roles = sampler.stop()
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    # CPU seconds spun: decode 0.4 (in a helper thread that exited), write 0.3, stage 0.2
    assert 0.35 <= roles["decode"] <= 0.55, roles
    assert 0.25 <= roles["write"] <= 0.42, roles
    assert 0.15 <= roles["stage"] <= 0.4, roles
    assert roles["driver"] == 0.0


def test_naming_is_idempotent_and_keeps_threads_working():
    name_native_threads()
    name_native_threads()
    out = []
    t = threading.Thread(target=lambda: out.append(Path(f"/proc/self/task/{threading.get_native_id()}/comm")
                                                    .read_text().strip()), name="vdp-writer-test")
    t.start()
    t.join()
    assert out == ["vdp-writer-test"[:15]]
    assert os.path.exists(f"{os.environ.get('TMPDIR', '/tmp')}/vdp-bench-threads-{os.getpid()}.log")
