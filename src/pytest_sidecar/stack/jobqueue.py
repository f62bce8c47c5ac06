"""The explainer's durable queue: one job file per accepted trace, removed when it ends.

A job file is written (atomically, fsynced) before the gateway acknowledges the trace,
so an accepted trace survives a restart: on start, every job file whose trace is not
terminal goes back on the queue.

Jobs leave by priority, then in arrival order: sentence jobs (priority 0) before token
jobs (1). Sentence work is cheap and has the tighter SLO (2 s against 8 s); queued behind
token work it would miss it while token work, ~5-10x costlier, barely notices the
sentence jobs ahead. So a sentence job waits for the sentence backlog only, a token job
for both (see Explainer.backlog_s).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
from typing import Any

from ..atomic import write_atomic


class DurableQueue:
    def __init__(self, directory: str, durable: bool = True) -> None:
        self.directory, self.durable = directory, durable
        os.makedirs(directory, exist_ok=True)
        self._ready: asyncio.PriorityQueue[tuple[int, int, str]] = asyncio.PriorityQueue()
        self._arrival = itertools.count()
        self._memory: dict[str, dict[str, Any]] = {}  # the queue-in-memory defect's store

    def _path(self, trace_id: str) -> str:
        return os.path.join(self.directory, f"{trace_id}.json")

    @staticmethod
    def priority(job: dict[str, Any]) -> int:
        return 1 if job.get("granularity") == "token" else 0

    async def put(self, trace_id: str, job: dict[str, Any]) -> None:
        if self.durable:  # §5: acknowledged means on disk
            await asyncio.to_thread(write_atomic, self._path(trace_id),
                                    json.dumps(job).encode())
        else:  # what no gateway should do: acknowledged, but gone with the process
            self._memory[trace_id] = job
        self._ready.put_nowait((self.priority(job), next(self._arrival), trace_id))

    def recover(self) -> list[str]:
        """Re-enqueue the jobs left on disk by a previous run; returns their ids."""
        ids = sorted(name.removesuffix(".json") for name in os.listdir(self.directory)
                     if name.endswith(".json"))
        for trace_id in ids:
            self._ready.put_nowait((self.priority(self.peek(trace_id)), next(self._arrival),
                                    trace_id))
        return ids

    def peek(self, trace_id: str) -> dict[str, Any]:
        """A job's payload without dequeuing it ({} if it is gone)."""
        if trace_id in self._memory:
            return self._memory[trace_id]
        try:
            with open(self._path(trace_id), encoding="utf-8") as handle:
                loaded: dict[str, Any] = json.load(handle)
                return loaded
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    async def get(self) -> tuple[str, dict[str, Any] | None]:
        _, _, trace_id = await self._ready.get()
        return trace_id, self.peek(trace_id) or None

    def done(self, trace_id: str) -> None:
        self._memory.pop(trace_id, None)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(trace_id))

    def depth(self) -> int:
        return self._ready.qsize()
