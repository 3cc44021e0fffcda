"""A minimal server-sent-events reader (the subset the vdp gateway sends)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator


@dataclass(frozen=True)
class ServerEvent:
    """One dispatched event: ``event`` name (default ``message``), ``data`` and last ``id``."""

    event: str
    data: str
    id: str | None = None


def parse_events(lines: Iterable[str]) -> Iterator[ServerEvent | None]:
    """Events from SSE text lines; yields None for every comment line (a heartbeat).

    Args:
        lines: Lines without their line terminators.

    Returns:
        An iterator of events, in order; an event is dispatched at the blank line after it.
    """
    event, data, last_id = "", [], None
    for line in lines:
        if line == "":
            if data:
                yield ServerEvent(event or "message", "\n".join(data), last_id)
            event, data = "", []
            continue
        if line.startswith(":"):
            yield None
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            last_id = value
