"""The client's view of what a job leaves: server internals taken out.

Job errors, ``spec.json`` and ``report.json`` are written for the operator and may name the
server's directories, its host name, process ids, Ray node ids, IP addresses, memory addresses
and terminal colour codes. Clients get them with server paths replaced by job-relative names
(or the input as submitted: a path under an input root or ``upload:<id>``) and the rest
removed; the full text stays in the gateway's log and in the job folder.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

#: Report keys that describe the server, not the job.
PRIVATE_KEYS = frozenset({"host", "hostname", "node", "pid", "pids", "node_id", "node_ip",
                          "node_ip_address", "ip", "address", "worker_id", "actor_id", "path",
                          "cwd", "environment"})

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b")
_IPV6 = re.compile(r"\b(?:[0-9a-fA-F]{1,4}:){2,7}[0-9a-fA-F]{1,4}\b|\[[0-9a-fA-F:]+\](?::\d+)?")
_HEX_ADDR = re.compile(r"\b0x[0-9a-fA-F]{6,16}\b")
_PID = re.compile(r"\b(pid)([=: ]+)\d+", re.IGNORECASE)
_LONG_HEX = re.compile(r"\b[0-9a-f]{40,}\b")  # Ray node, actor and worker ids
_ABS_PATH = re.compile(r"(?<![\w.~])/(?:[^\s/'\"(),:;]+/)*[^\s/'\"(),:;]*")


def public_text(text: str, *, job_dir: Path | None = None, input_path: str | None = None,
                input_label: str | None = None) -> str:
    """`text` without ANSI codes, addresses, pids and server paths.

    Args:
        text: An error message or report string.
        job_dir: The job's folder: paths under it become job-relative names.
        input_path: The resolved input file: it becomes `input_label`.
        input_label: The input as the client submitted it.
    """
    out = _ANSI.sub("", text)
    if input_path and input_label:
        out = out.replace(input_path, input_label)
    if job_dir is not None:
        for prefix in {str(job_dir), str(job_dir.resolve())}:
            out = out.replace(prefix + "/", "").replace(prefix, ".")
    out = _ABS_PATH.sub(lambda m: _last_part(m.group(0)), out)
    out = _IPV6.sub("<address>", out)
    out = _IPV4.sub("<address>", out)
    out = _HEX_ADDR.sub("<address>", out)
    out = _PID.sub(lambda m: m.group(1), out)
    return _LONG_HEX.sub("<id>", out)


def _last_part(path: str) -> str:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return name or "/"


def public_json(data: Any, *, job_dir: Path | None = None, input_path: str | None = None,
                input_label: str | None = None) -> Any:
    """A copy of a JSON value with `PRIVATE_KEYS` dropped and every string `public_text`-ed."""
    kw = {"job_dir": job_dir, "input_path": input_path, "input_label": input_label}
    if isinstance(data, dict):
        return {k: public_json(v, **kw) for k, v in data.items() if k not in PRIVATE_KEYS}
    if isinstance(data, list):
        return [public_json(v, **kw) for v in data]
    if isinstance(data, str):
        return public_text(data, **kw)
    return data
