"""Server-sent events of one job's status: a ``status`` event per change, until it finishes.

The stream polls the store's cheap ``(version, state)`` every `interval_s` and sends the full
status only when the version moved; every event's ``id`` is that version. Progress within a
run only grows, so the frames counts a client sees are monotone, and the last event carries
the final state. Idle streams get a ``: keep-alive`` comment every `heartbeat_s`.
"""
from __future__ import annotations

import asyncio
import threading
import time
from typing import AsyncIterator

from vdp.api import TERMINAL_STATES
from vdp.service.store import JobStore
from vdp.service.views import job_status


def format_event(event: str, data: str, event_id: str | None = None) -> str:
    """One SSE message (``data`` must be a single line, as JSON is)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n"


async def job_events(store: JobStore, job_id: str, *, interval_s: float, heartbeat_s: float,
                     stopping: threading.Event) -> AsyncIterator[str]:
    """The event stream of `job_id` (ends after the final state, on shutdown, or if deleted)."""
    last_version = -1
    last_sent = time.monotonic()
    while True:
        current = store.job_version(job_id)
        if current is None:
            yield format_event("deleted", f'{{"id": "{job_id}"}}')
            return
        if current[0] != last_version:
            record = store.get_job(job_id)
            if record is None:
                continue
            last_version = record.version
            last_sent = time.monotonic()
            yield format_event("status", job_status(record).model_dump_json(), str(record.version))
            if record.state in TERMINAL_STATES:
                return
        elif time.monotonic() - last_sent >= heartbeat_s:
            last_sent = time.monotonic()
            yield ": keep-alive\n\n"
        if stopping.is_set():
            return
        await asyncio.sleep(interval_s)
