"""SidecarClient's parsing of server-sent events."""

from __future__ import annotations

from pytest_sidecar.client import SseEvent, parse_sse


def test_sse_parsing() -> None:
    lines = ["id: 1", "event: status_update", 'data: {"state": "running"}', "",
             ": keep-alive", "", "id: 2", "event: complete", "data: {}", ""]
    items = list(parse_sse(iter(lines)))
    assert items == [SseEvent("status_update", '{"state": "running"}', "1"), ": keep-alive",
                     SseEvent("complete", "{}", "2")]
