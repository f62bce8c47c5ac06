"""The explainer's durable queue: a job per accepted trace in the shared database (kind
"job"), written before the gateway acknowledges the trace and removed when it ends.

The gateway puts jobs; the explainer process consumes them, learning of each from the
database's change feed. An accepted trace survives a restart of either process: a job
stays in the database until its trace ends, so a restarted explainer finds it again.

Jobs leave by priority, then in arrival order: sentence jobs (priority 0) before token
jobs (1). Sentence work is cheap and has the tighter SLO (2 s against 8 s); queued behind
token work it would miss it while token work, ~5-10x costlier, barely notices the
sentence jobs ahead. So a sentence job waits for the sentence backlog only, a token job
for both (see backlog.py).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

from .shared_db import SharedDb, constant

Job = dict[str, Any]


class DurableQueue:
    """`put` (the gateway) returns once the job is durable; with `consume=True` (the
    explainer) `get` hands out the jobs the database holds, known and new."""

    def __init__(self, db: SharedDb, durable: bool = True, consume: bool = False) -> None:
        self.db, self.durable, self.consume = db, durable, consume
        self._ready: asyncio.PriorityQueue[tuple[int, int, str]] = asyncio.PriorityQueue()
        self._arrival = itertools.count()
        self._jobs: dict[str, Job] = {}  # the jobs this consumer holds
        self._live: set[str] = set()  # every job the database holds
        self._listeners: list[Callable[[str, Job], None]] = []
        self._removals: set[asyncio.Task[Any]] = set()
        db.follow("job", self._followed)

    @staticmethod
    def priority(job: Job) -> int:
        return 1 if job.get("granularity") == "token" else 0

    def add_listener(self, callback: Callable[[str, Job], None]) -> None:
        """Call `callback(trace_id, job)` for every job that appears, loaded or new."""
        self._listeners.append(callback)

    async def put(self, trace_id: str, job: Job) -> None:
        """Persist a job (§5: acknowledged means on disk); returns once durable."""
        await self.db.apply("job", trace_id, constant(job))

    async def get(self) -> tuple[str, Job | None]:
        _, _, trace_id = await self._ready.get()
        return trace_id, self._jobs.get(trace_id)

    def held(self) -> list[str]:
        """The ids of the jobs this consumer holds, started or not."""
        return list(self._jobs)

    def done(self, trace_id: str) -> None:
        """The job's trace ended: remove the job (its trace's state is already durable,
        so a job that outlives a kill here is found, seen ended, and removed again)."""
        self._jobs.pop(trace_id, None)
        self._remove(trace_id)

    def depth(self) -> int:
        return self._ready.qsize()

    def live(self, trace_id: str) -> bool:
        """Whether the database holds a job for this trace."""
        return trace_id in self._live

    async def close(self) -> None:
        if self._removals:
            await asyncio.gather(*self._removals, return_exceptions=True)

    def _remove(self, trace_id: str) -> None:
        task = asyncio.ensure_future(self.db.apply("job", trace_id, lambda _: None))
        self._removals.add(task)
        task.add_done_callback(self._removals.discard)

    def _followed(self, trace_id: str, job: Job | None, loading: bool) -> None:
        if job is None:
            self._live.discard(trace_id)
            return
        if trace_id in self._live:
            return  # a job is written once
        self._live.add(trace_id)
        for listener in self._listeners:
            listener(trace_id, job)
        if not self.consume:
            return
        self._jobs[trace_id] = job
        self._ready.put_nowait((self.priority(job), next(self._arrival), trace_id))
        if not self.durable:
            # What no explainer should do: take the job out of the database on receipt,
            # so it lives in this process's memory alone and dies with it.
            self._remove(trace_id)
