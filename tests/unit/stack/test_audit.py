"""The audit log catches up with the status store after a crash (CONTRACT §10): a
terminal line still in memory at a SIGKILL is written at the next start, once, and a
line torn mid-append does not swallow the next one."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from pytest_sidecar.stack.audit import Auditor


def _record(trace_id: str, state: str) -> dict[str, Any]:
    return {"trace_id": trace_id, "tenant_id": "a", "state": state, "request_id": "r-1"}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in path.read_text().splitlines() if raw.startswith("{")
            and raw.endswith("}")]


def test_a_lost_terminal_line_is_written_once_at_the_next_start(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    # Before the kill: "done" had its line; "lost" ended in the store, its line never
    # reached the disk; the last append was torn mid-line.
    log.write_text('{"event":"trace.complete","trace_id":"done"}\n{"event":"trace.comp')

    async def restart() -> int:
        auditor = Auditor(str(log))
        auditor.start()
        written = auditor.reconcile([_record("done", "complete"), _record("lost", "failed"),
                                     _record("gone", "canceled")])
        await auditor.write("chat.submit", trace_id="next")
        await auditor.close()
        return written

    assert asyncio.run(restart()) == 2
    events = [(line["event"], line["trace_id"]) for line in _lines(log)]
    assert events.count(("trace.complete", "done")) == 1, "a recorded ending is not repeated"
    assert ("trace.failed", "lost") in events and ("trace.canceled", "gone") in events
    assert ("chat.submit", "next") in events, "the torn line did not swallow the next one"
    assert asyncio.run(restart()) == 0, "a second start finds nothing missing"
