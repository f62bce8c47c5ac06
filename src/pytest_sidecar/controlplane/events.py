"""From the plugin's event log to what viewers see.

The plugin writes one JSON line per test phase to `sidecar-events.jsonl` in the run's
directory, flushed per line; it is the source of truth for progress. `EventTail` reads
the complete lines added since the last read; `Progress` turns phases into the viewer
events: `test` (a test finished, with outcome and reason) and `progress` (total,
completed, failures).
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass, field
from typing import Any

EVENT_LOG = "sidecar-events.jsonl"


class EventTail:
    """The new complete lines of a run's event log (found under REPORT_DIR/runs/*/)."""

    def __init__(self, report_dir: str) -> None:
        self.report_dir = report_dir
        self.path: str | None = None
        self._offset = 0

    def read_new(self) -> list[dict[str, Any]]:
        if self.path is None:
            found = sorted(glob.glob(os.path.join(self.report_dir, "runs", "*", EVENT_LOG)))
            if not found:
                return []
            self.path = found[0]
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except OSError:
            return []
        complete = chunk[:chunk.rfind(b"\n") + 1]  # a line still being written waits
        self._offset += len(complete)
        events = []
        for line in complete.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.append(event)
        return events


@dataclass
class Progress:
    """Which tests finished and how, from the plugin's phase events."""

    total: int = 0
    outcomes: dict[str, str] = field(default_factory=dict)

    @property
    def failures(self) -> int:
        return sum(1 for o in self.outcomes.values() if o in ("failed", "error"))

    def snapshot(self) -> dict[str, Any]:
        return {"type": "progress", "total": self.total, "completed": len(self.outcomes),
                "failures": self.failures}

    def on(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """The viewer events one plugin event gives (none for most)."""
        kind = event.get("event")
        if kind == "collected":
            self.total = int(event.get("count") or 0)
            return [self.snapshot()]
        if kind != "phase":
            return []
        when, outcome, nodeid = event.get("when"), event.get("outcome"), event.get("nodeid")
        if not isinstance(nodeid, str):
            return []
        if when == "setup" and outcome in ("failed", "skipped"):
            finished = "error" if outcome == "failed" else "skipped"
        elif when == "call":
            finished = str(outcome)
        elif when == "teardown" and outcome == "failed":
            finished = "error"
        else:
            return []
        self.outcomes[nodeid] = finished
        return [{"type": "test", "nodeid": nodeid, "outcome": finished,
                 "reason": event.get("reason"), "reason_code": event.get("reason_code"),
                 "duration_s": round(float(event.get("duration") or 0), 3)},
                self.snapshot()]
