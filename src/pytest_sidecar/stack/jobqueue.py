"""The explainer's durable queue: one job file per accepted trace, removed when it ends.

A job file is written (atomically, fsynced) before the gateway acknowledges the trace,
so an accepted trace survives a restart: on start, every job file whose trace is not
terminal goes back on the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import Any

from ..atomic import write_atomic


class DurableQueue:
    def __init__(self, directory: str) -> None:
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self._ready: asyncio.Queue[str] = asyncio.Queue()

    def _path(self, trace_id: str) -> str:
        return os.path.join(self.directory, f"{trace_id}.json")

    async def put(self, trace_id: str, job: dict[str, Any]) -> None:
        await asyncio.to_thread(write_atomic, self._path(trace_id), json.dumps(job).encode())
        self._ready.put_nowait(trace_id)

    def recover(self) -> list[str]:
        """Re-enqueue the jobs left on disk by a previous run; returns their ids."""
        ids = sorted(name.removesuffix(".json") for name in os.listdir(self.directory)
                     if name.endswith(".json"))
        for trace_id in ids:
            self._ready.put_nowait(trace_id)
        return ids

    def peek(self, trace_id: str) -> dict[str, Any]:
        """A job's payload without dequeuing it ({} if it is gone)."""
        try:
            with open(self._path(trace_id), encoding="utf-8") as handle:
                loaded: dict[str, Any] = json.load(handle)
                return loaded
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    async def get(self) -> tuple[str, dict[str, Any] | None]:
        trace_id = await self._ready.get()
        return trace_id, self.peek(trace_id) or None

    def done(self, trace_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(trace_id))

    def depth(self) -> int:
        return self._ready.qsize()
