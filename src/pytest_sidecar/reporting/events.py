"""The controller's event log: JSON Lines, one object per test phase, flushed per line.

It is the source of truth for the rendered reports, and survives a crashed session.
"""

from __future__ import annotations

import json
import os
from typing import IO, Any

from ..vocabulary.redaction import Redactor


class EventLog:
    def __init__(self, path: str, redactor: Redactor) -> None:
        self.path = path
        self._redactor = redactor
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # Kept open for the session and flushed per line; "w": never appended across runs.
        self._handle: IO[str] | None = open(path, "w", encoding="utf-8")  # noqa: SIM115

    def write(self, event: dict[str, Any]) -> None:
        if self._handle is None:
            return
        self._handle.write(json.dumps(self._redactor.data(event), default=str) + "\n")
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def read_events(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
