"""Host CPU by role (driver / decode / stage / write) for the GPU-speed simulation.

Threads are told apart by their kernel names. `name_native_threads` makes every Python thread
started afterwards carry its ``threading`` name into the kernel (``/proc/<pid>/task/<tid>/comm``,
15 characters), so the engine's threads are recognised (``vdp-decode-c3``, ``vdp-worker-deco``,
``vdp-writer``); a thread whose name says no role (``vdp-deadline: ...``, the helper that runs
one FFmpeg call under a timeout) is tagged with the role of the thread that started it (and a
name whose role the first 15 characters would lose is tagged with it, ``decod:...``), and
threads a thread creates natively (FFmpeg's, OpenMP's) inherit its kernel name. Each such
Python thread also appends its final CPU time to ``<tmp>/vdp-bench-threads-<pid>.log`` when it
ends, so short-lived threads are counted in full. `RoleSampler` reads the CPU time of every
thread of the watched processes and of their child processes (same session) a few times per
second, adds the exit records, and sums the growth per role:

- ``decode``: threads whose name contains ``deco``;
- ``write``: threads whose name contains ``writ``, ``encod``, ``mux`` or ``png`` (the PNG
  writers' pools), and child ``ffmpeg*`` processes (encoders, audio mux);
- ``stage``: every other thread of a stage actor (the model call, Ray's own threads there);
- ``driver``: every other thread of the driver process (scheduling, merging, Ray client);
- ``ray``: Ray's daemons (GCS, raylet with its object store and transfers, agents): the
  driver's child processes other than ``ffmpeg`` (an embedded Ray instance) and the processes
  of roots given the role ``ray`` (the sessions of ``ray start`` nodes), stage actors excepted;
- ``other``: the rest of the machine (other users), from ``/proc/stat``.

CPU of native threads that end between two samples is charged to their process's default role
(the process totals are exact). The sampler's own thread counts in no role.
"""
from __future__ import annotations

import ctypes
import os
import tempfile
import threading
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
ROLES = ("driver", "decode", "stage", "write", "ray", "other")
EXIT_LOG = str(Path(tempfile.gettempdir()) / "vdp-bench-threads-{pid}.log")


def thread_role(comm: str, default: str | None) -> str | None:
    """The role a thread name says (`default` when it says none)."""
    name = comm.lower()
    if "deco" in name:
        return "decode"
    if any(w in name for w in ("writ", "encod", "mux", "png")):
        return "write"
    return default


def name_native_threads() -> None:
    """From now on, Python threads of this process carry their name (tagged with their starter's
    role where the name says none) into the kernel and log their CPU time when they end
    (idempotent; Linux only, a no-op elsewhere)."""
    if getattr(threading.Thread, "_vdp_named", False):
        return
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return
    start, inner = threading.Thread.start, threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def tagged_start(self: threading.Thread) -> None:
        parent = getattr(threading.current_thread(), "_vdp_role", None)
        role = self._vdp_role = thread_role(self.name, parent)  # type: ignore[attr-defined]
        # the kernel keeps 15 characters: tag the name where those would not say the role
        self._vdp_comm = self.name if thread_role(self.name[:15], None) == role else f"{role[:5]}:{self.name}"
        start(self)

    def named_inner(self: threading.Thread) -> None:
        comm = getattr(self, "_vdp_comm", self.name)
        prctl(15, comm.encode()[:15], 0, 0, 0)  # PR_SET_NAME
        try:
            inner(self)
        finally:
            line = f"{threading.get_native_id()} {time.thread_time():.6f} {time.time():.3f} {comm[:15]}\n"
            try:
                with open(EXIT_LOG.format(pid=os.getpid()), "a") as fh:
                    fh.write(line)
            except OSError:
                pass

    threading.Thread.start = tagged_start  # type: ignore[method-assign]
    threading.Thread._bootstrap_inner = named_inner  # type: ignore[attr-defined]
    threading.Thread._vdp_named = True  # type: ignore[attr-defined]


def machine_cpu_s() -> float:
    """CPU seconds all processes of the machine have used (user, nice, system, irq, softirq)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / TICK


def _stat(path: str) -> tuple[str, float] | None:
    """(comm, utime + stime ticks) of a /proc stat file."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    head, tail = text.rsplit(")", 1)
    fields = tail.split()
    return head.split("(", 1)[1], int(fields[11]) + int(fields[12])


def _same_session(pid: int, root: int) -> bool:
    try:
        return os.getsid(pid) == os.getsid(root)
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            out += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
    except OSError:
        pass
    return out


class RoleSampler:
    """Samples the CPU time of `roots` (pid -> default role: ``driver``, ``stage`` or ``ray``;
    earlier roots win a process that is also a later one's descendant) and their descendants
    by thread in a background thread; `stop` returns CPU seconds per role."""

    def __init__(self, roots: dict[int, str], interval_s: float = 0.2) -> None:
        self.roots = roots
        self.interval_s = interval_s
        self._first: dict[tuple[int, int], float] = {}
        self._last: dict[tuple[int, int], tuple[str, float]] = {}
        self._proc_first: dict[int, float] = {}
        self._proc_last: dict[int, tuple[str, float]] = {}
        self._proc_role: dict[int, str] = {}
        self._stop = threading.Event()
        self._me = 0
        self._machine0 = machine_cpu_s()
        self._wall0 = time.time()
        self._scan(initial=True)
        self._thread = threading.Thread(target=self._loop, name="bench-sampler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        self._me = threading.get_native_id()
        while not self._stop.wait(self.interval_s):
            self._scan()

    def _scan(self, initial: bool = False) -> None:
        todo = [(pid, role, pid) for pid, role in self.roots.items()]
        done: set[int] = set()
        while todo:
            pid, role, root = todo.pop(0)
            proc = _stat(f"/proc/{pid}/stat")
            if proc is None or pid in done:
                continue
            done.add(pid)
            if proc[0].startswith("ffmpeg"):  # also imageio-ffmpeg's "ffmpeg-linux-x86_64-v9.0.2"
                role = "write"
            elif pid != root and role == "driver":
                role = "ray"  # the driver's children: an embedded Ray instance's daemons
            self._proc_role[pid] = role
            self._proc_first.setdefault(pid, proc[1] if initial else 0)
            self._proc_last[pid] = proc
            try:
                tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
            except OSError:
                tids = []
            for tid in tids:
                st = _stat(f"/proc/{pid}/task/{tid}/stat")
                if st is None:
                    continue
                if tid == self._me:
                    st = ("bench-sampler", st[1])
                self._first.setdefault((pid, tid), st[1] if initial else 0)
                self._last[(pid, tid)] = st
            todo += [(c, role, root) for c in _children(pid) if _same_session(c, root)]

    def _exits(self) -> None:
        """Final CPU times of the watched processes' Python threads that ended since the start."""
        for pid in self._proc_last:
            try:
                lines = Path(EXIT_LOG.format(pid=pid)).read_text().splitlines()
            except OSError:
                continue
            for line in lines:
                tid, cpu, ended, comm = line.split(" ", 3)
                if float(ended) >= self._wall0:
                    self._first.setdefault((pid, int(tid)), 0)
                    self._last[(pid, int(tid))] = (comm, float(cpu) * TICK)

    def stop(self) -> dict[str, float]:
        """CPU seconds per role since the sampler started (see the module docstring)."""
        self._stop.set()
        self._thread.join()
        self._scan()
        self._exits()
        out = dict.fromkeys(ROLES, 0.0)
        seen: dict[int, float] = {}
        for (pid, tid), (comm, ticks) in self._last.items():
            grown = ticks - self._first[(pid, tid)]
            seen[pid] = seen.get(pid, 0) + grown
            if comm != "bench-sampler":  # the measurement's own cost counts nowhere
                out[thread_role(comm, self._proc_role[pid])] += grown / TICK
        watched = 0
        for pid, (_comm, ticks) in self._proc_last.items():
            grown = ticks - self._proc_first[pid]
            watched += grown
            out[self._proc_role[pid]] += max(0, grown - seen.get(pid, 0)) / TICK  # exited threads
        out["other"] = max(0.0, machine_cpu_s() - self._machine0 - watched / TICK)
        return out
