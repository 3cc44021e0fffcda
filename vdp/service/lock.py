"""One gateway per data directory: an exclusive `flock` on ``<data_dir>/gateway.lock``.

The lock is taken before the store is opened and before crash recovery, so a second gateway
started on the same data directory stops with a clear message instead of re-queueing (and then
running twice) the jobs the first one is running. The kernel drops the lock when the process
dies, even by SIGKILL, so a crashed gateway never leaves a stale lock behind.
"""
from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path

from vdp.service.errors import StoreError

LOCK_NAME = "gateway.lock"

_held: dict[Path, "DataDirLock"] = {}
_held_guard = threading.Lock()


class DataDirInUseError(StoreError):
    """Another gateway process holds the data directory."""


class DataDirLock:
    """The exclusive lock of one data directory, held by this process until `release`."""

    def __init__(self, data_dir: Path, fd: int) -> None:
        self.data_dir = data_dir
        self._fd = fd

    def release(self) -> None:
        with _held_guard:
            if _held.get(self.data_dir) is self:
                del _held[self.data_dir]
                os.close(self._fd)


def acquire(data_dir: Path, *, port: int | None = None) -> DataDirLock:
    """Lock `data_dir` for this process (a second call in the same process returns the same lock).

    Raises:
        DataDirInUseError: Another process holds it; the message names its pid and port.
    """
    data_dir = Path(os.path.abspath(data_dir))
    with _held_guard:
        if data_dir in _held:
            return _held[data_dir]
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe_holder(fd)
            os.close(fd)
            raise DataDirInUseError(
                f"the data directory {data_dir} is in use by another vdp gateway{holder}; stop it "
                "first, or give this one its own --data-dir / VDP_DATA_DIR") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "port": port}).encode())
        lock = _held[data_dir] = DataDirLock(data_dir, fd)
        return lock


def _describe_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 256, 0) or b"{}")
    except (OSError, ValueError):
        return ""
    parts = [f"pid {info['pid']}" if info.get("pid") else "",
             f"port {info['port']}" if info.get("port") else ""]
    text = ", ".join(p for p in parts if p)
    return f" ({text})" if text else ""
