"""Gateway processes against their data directory (issue 18, items 7-9 and the minor ones):
a second gateway on the same store, damaged and lost stores, a full disk, slow and piled-up
uploads, unused uploads, and the gateway's helper processes after a kill -9."""
from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import MEDIA
from tests.service.gateway import BEAR, LONG, TOKEN, Gateway, depth_spec
from tests.service.test_bad_requests import check


def run_to_exit(gw: Gateway, timeout_s: float = 60.0) -> tuple[int, str]:
    """Start `gw` and wait for it to exit (it must refuse to start)."""
    proc = gw.launch()
    try:
        code = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        gw.stop()
        raise AssertionError(f"the gateway did not refuse to start:\n{gw.log_tail()}")
    return code, gw.log_tail()


def wait_state(http: httpx.Client, job_id: str, states: tuple[str, ...], timeout_s: float = 180) -> dict:
    deadline = time.monotonic() + timeout_s
    while (status := http.get(f"/v1/jobs/{job_id}").json())["state"] not in states:
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    return status


def backup_store(src: Path, dst: Path) -> None:
    """A consistent copy of a live store (SQLite's backup API, WAL included)."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)


# -- 8. one gateway per data directory ------------------------------------------------------------


def test_second_gateway_on_the_same_data_dir_refuses_before_touching_running_jobs(gateway, http, roots):
    job_id = http.post("/v1/jobs", json=depth_spec(LONG, max_frames=96)).json()["id"]
    try:
        before = wait_state(http, job_id, ("running",))
        # Another port: the port binds, then the data-dir lock refuses (before any recovery).
        code, log = run_to_exit(Gateway(gateway.data_dir, [roots["root"]]))
        assert code == 2, log
        assert "in use by another vdp gateway" in log and f"pid {gateway.proc.pid}" in log, log
        assert "Traceback" not in log
        # The same port: refused at bind, also before recovery.
        same = Gateway(gateway.data_dir, [roots["root"]])
        same.port = gateway.port
        code, log = run_to_exit(same)
        assert code == 2 and f"port {gateway.port} on 127.0.0.1 is already in use" in log, log
        now = http.get(f"/v1/jobs/{job_id}").json()
        assert now["state"] in ("running", "succeeded") and now["attempts"] == before["attempts"] == 1
        assert "restart" not in (now["error"] or "")
    finally:
        http.post(f"/v1/jobs/{job_id}/cancel")


# -- 9. damaged and lost stores -------------------------------------------------------------------


@pytest.fixture(scope="module")
def store_template(gateway, tmp_path_factory) -> Path:
    """A data dir holding a copy of the shared gateway's store and one finished job folder."""
    with gateway.http() as http:
        job = http.post("/v1/jobs", json=depth_spec(BEAR, max_frames=4)).json()["id"]
        assert wait_state(http, job, ("succeeded", "failed"))["state"] == "succeeded"
    data = tmp_path_factory.mktemp("template") / "data"
    (data / "jobs").mkdir(parents=True)
    backup_store(gateway.data_dir / "vdp.db", data / "vdp.db")
    shutil.copytree(gateway.data_dir / "jobs" / job, data / "jobs" / job)
    (data / "job_id").write_text(job)
    return data


@pytest.fixture()
def store_copy(store_template, tmp_path) -> Path:
    shutil.copytree(store_template, tmp_path / "data")
    return tmp_path / "data"


@pytest.mark.parametrize("damage,message", [
    ("zero_page_1", "is not an SQLite database"),
    ("zero_page_2", "is damaged"),
    ("zip_header", "is not an SQLite database"),
    ("truncated_text", "is not an SQLite database"),
])
def test_damaged_store_is_refused_with_a_clear_message(store_copy, roots, damage, message):
    db = store_copy / "vdp.db"
    with db.open("r+b") as f:
        if damage == "zero_page_1":
            f.write(b"\0" * 4096)
        elif damage == "zero_page_2":
            f.seek(4096)
            f.write(b"\0" * 4096)
        elif damage == "zip_header":
            f.write(b"PK\x03\x04" + b"\0" * 60)
    if damage == "truncated_text":
        db.write_text("this is not a database")
    code, log = run_to_exit(Gateway(store_copy, [roots["root"]]))
    assert code == 2, log
    assert message in log and "will not start on it" in log and "Traceback" not in log, log


# -- 7, 9 (adoption) and the minor items: one gateway on a small tmpfs -----------------------------


@pytest.fixture()
def tmpfs(tmp_path) -> Path:
    mount = tmp_path / "small"
    mount.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()})")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path) -> Path:
    """Fill the file system to the last byte; returns the filler file."""
    filler = mount / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for size in (1 << 16, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def descendants(pid: int) -> dict[int, str]:
    """Descendant pids of `pid` with their start times (from /proc)."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            table[int(entry)] = (int(fields[1]), fields[19])
    found, todo = {}, [pid]
    while todo:
        parent = todo.pop()
        for child, (ppid, started) in table.items():
            if ppid == parent and child not in found:
                found[child] = started
                todo.append(child)
    return found


def alive(pid: int, started: str) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] == started and fields[0] != "Z"


def test_full_disk_lost_store_slow_and_stale_uploads_and_kill_9(store_copy, tmpfs, roots):
    # The data dir lives on a 24 MB tmpfs; its store is gone, its job folder is not, and a
    # folder an interrupted upload left behind is there too.
    data = tmpfs / "data"
    shutil.copytree(store_copy, data)
    job_id = (data / "job_id").read_text()
    (data / "vdp.db").unlink()
    stray = data / "uploads" / ("e" * 32)
    stray.mkdir(parents=True)
    (stray / ".clip.mp4.part").write_bytes(b"x" * 1000)
    gw = Gateway(data, [roots["root"]], VDP_MAX_CONCURRENT_JOBS="0", VDP_UPLOAD_READ_TIMEOUT_S="3",
                 VDP_MAX_CONCURRENT_UPLOADS="2", VDP_UPLOAD_TTL_S="4").start()
    try:
        with gw.http() as http:
            # 9: the job folder is adopted, with its outputs; the stray upload folder is gone.
            status = http.get(f"/v1/jobs/{job_id}")
            assert status.status_code == 200 and status.json()["state"] == "succeeded", status.text
            assert http.get(f"/v1/jobs/{job_id}/outputs/depth.npz").status_code == 200
            assert not stray.exists()
            assert "adopted 1 job folder" in gw.log_tail(20000)

            # Minor: an unused upload expires; one a queued job reads is kept.
            clip = (MEDIA / BEAR).read_bytes()
            unused = http.post("/v1/uploads", content=clip).json()["id"]
            used = http.post("/v1/uploads", content=clip).json()["id"]
            assert http.post("/v1/jobs", json=depth_spec(f"upload:{used}")).status_code == 201
            time.sleep(9)
            check(http.get(f"/v1/uploads/{unused}"), 404, "not_found", "no upload")
            assert not (data / "uploads" / unused).exists()
            assert http.get(f"/v1/uploads/{used}").status_code == 200

            # Minor: a stalled upload ends with 408; a third concurrent upload gets 429.
            slow = [socket.create_connection(("127.0.0.1", gw.port)) for _ in range(2)]
            for s in slow:
                s.sendall(f"POST /v1/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                          "Content-Length: 100000\r\n\r\n".encode() + b"\0" * 10)
            time.sleep(0.5)
            check(http.post("/v1/uploads", content=clip), 429, "too_many_requests", "uploads are in progress")
            for s in slow:
                s.settimeout(10)
                assert s.recv(4096).split(b" ", 2)[1] == b"408"
                s.close()
            assert sorted(p.name for p in (data / "uploads").iterdir()) == [used]

            # 7: a full disk gives 507 with nothing partial left, for uploads and for jobs.
            jobs_before = http.get("/v1/jobs").json()["jobs"]
            filler = fill(tmpfs)
            check(http.post("/v1/uploads", content=clip), 507, "storage_full", "disk is full")
            assert sorted(p.name for p in (data / "uploads").iterdir()) == [used]
            check(http.post("/v1/jobs", json=depth_spec(BEAR)), 507, "storage_full", "disk is full")
            filler.unlink()
            assert http.get("/v1/jobs").json()["jobs"] == jobs_before
            assert http.post("/v1/uploads", content=clip).status_code == 201

        # Minor: kill -9 of the gateway takes its helper processes (Ray's included) with it.
        helpers = descendants(gw.proc.pid)
        assert helpers, "the gateway started no helper processes"
        os.kill(gw.proc.pid, signal.SIGKILL)
        gw.proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while (left := [p for p, t in helpers.items() if alive(p, t)]) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not left, f"processes outlived the gateway: {left}"
    finally:
        gw.stop()
        if gw.proc is not None and gw.proc.poll() is None:
            os.killpg(gw.proc.pid, signal.SIGKILL)


def test_bind_refuses_a_busy_port_and_keeps_nagle_off():
    import socket as _socket

    from vdp.service.server import PortInUseError, bind

    sock = bind("127.0.0.1", 0)
    try:
        # asyncio turns TCP_NODELAY on for accepted connections only when the listener says TCP.
        assert sock.proto == _socket.IPPROTO_TCP
        with pytest.raises(PortInUseError, match="already in use"):
            bind("127.0.0.1", sock.getsockname()[1])
    finally:
        sock.close()
