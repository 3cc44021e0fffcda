"""The gateway's processes end with it, even when it is killed with SIGKILL.

Ray ties most of a local instance's processes to the gateway, but not all (a kill -9 of the
gateway left two Ray helpers running). `start_reaper` starts a tiny watcher process (this file,
run as a script: no vdp, no torch) that keeps a list of the gateway's descendants, read from
``/proc`` every second, and holds the read end of a pipe whose write end only the gateway has.
When the gateway dies, however it dies, the pipe reaches end-of-file and the watcher sends
SIGKILL to every process on its list that is still the same process (same start time).
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

_started = False


def start_reaper() -> None:
    """Watch this process's descendants from a separate process (Linux; once per process)."""
    global _started
    if _started or not Path("/proc/self/stat").exists():
        return
    read_end, write_end = os.pipe()
    subprocess.Popen([sys.executable, "-I", "-S", __file__, str(os.getpid())], stdin=read_end,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True,
                     start_new_session=True)
    os.close(read_end)
    os.set_inheritable(write_end, False)  # only this process holds it: EOF means it is gone
    _started = True


def _processes() -> dict[int, tuple[int, str]]:
    """``{pid: (parent pid, start time)}`` of every process visible in /proc."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        out[int(entry)] = (int(fields[1]), fields[19])
    return out


def _descendants(root: int, table: dict[int, tuple[int, str]]) -> dict[int, str]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = {}, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if pid == os.getpid() or pid in found:
            continue
        found[pid] = table[pid][1]
        todo.extend(children.get(pid, []))
    return found


def _watch(gateway: int) -> None:
    known: dict[int, str] = {}
    while True:
        ready, _, _ = select.select([0], [], [], 1.0)
        if ready and not os.read(0, 1):
            break
        known.update(_descendants(gateway, _processes()))
    table = _processes()
    for pid, started in known.items():
        if pid in table and table[pid][1] == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


if __name__ == "__main__":
    _watch(int(sys.argv[1]))
