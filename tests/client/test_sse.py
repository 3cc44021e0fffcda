"""The SSE line parser."""
from __future__ import annotations

from vdp.client.sse import ServerEvent, parse_events


def test_events_comments_and_multiline_data():
    lines = ["id: 3", "event: status", 'data: {"a": 1}', "", ": keep-alive", "",
             "data: one", "data:two", "", "event: ignored-without-data", ""]
    assert list(parse_events(lines)) == [
        ServerEvent("status", '{"a": 1}', "3"), None, ServerEvent("message", "one\ntwo", "3")]


def test_an_event_without_a_blank_line_is_not_dispatched():
    assert list(parse_events(["event: status", "data: x"])) == []
