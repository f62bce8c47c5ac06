"""The gateway's side of the explanation lane: admission under backpressure (CONTRACT §5),
job submission, and what the explainer process says of itself.

The explainer runs in a process of its own; the two meet in the shared database. The
gateway follows the jobs and the traces' ends there (backlog.py), and the explainer's
heartbeat (a "meta" entry): when it last spoke, whether its workers consume, how much
slower than estimated its jobs run. The gateway counts the explain requests it refuses
(the ladder's `drop`) and leaves the total in the database, where the explainer, whose
metrics carry `backpressure_actions_total`, reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from . import backpressure
from .backlog import Backlog
from .chaos import ChaosControl
from .jobqueue import DurableQueue
from .metrics import GRANULARITIES
from .settings import StackSettings
from .shared_db import Body, SharedDb
from .text import sentences, tokenize

HEARTBEAT = "explainer"  # the meta entry the explainer writes every HEARTBEAT_S
DROPS = "drops"  # the meta entry holding the gateway's refusals, in total
HEARTBEAT_S = 1.0
HEARTBEAT_STALE_S = 3.0  # an explainer silent this long is not consuming
DROPS_FLUSH_S = 0.1


def service_seconds(settings: StackSettings, completion: str, granularity: str) -> float:
    """The simulated compute time of one explanation."""
    if granularity == "token":
        return settings.sentence_base_s + settings.token_s * len(tokenize(completion))
    return settings.sentence_base_s + settings.sentence_s * len(sentences(completion))


class ExplainLane:
    def __init__(self, settings: StackSettings, db: SharedDb, queue: DurableQueue,
                 backlog: Backlog, chaos: ChaosControl) -> None:
        self.settings, self.db, self.queue, self.backlog = settings, db, queue, backlog
        self.chaos = chaos
        self.heartbeat: Body = {}
        self._drops = 0  # refusals not yet in the database
        self._flusher: asyncio.Task[None] | None = None
        db.follow("meta", self._meta)

    def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_drops(), name="drop counter")

    async def stop(self) -> None:
        if self._flusher:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        with contextlib.suppress(OSError):
            await self._write_drops()

    def slowdown(self) -> float:
        return max(1.0, float(self.heartbeat.get("slowdown", 1.0)))

    def alive(self) -> bool:
        """The explainer spoke within HEARTBEAT_STALE_S."""
        return time.time() - float(self.heartbeat.get("at", 0.0)) < HEARTBEAT_STALE_S

    def consuming(self) -> bool:
        """The explainer spoke lately, says its workers consume, and no chaos flag
        stalls it."""
        return self.alive() and bool(self.heartbeat.get("consuming")) and \
            not self.chaos.outage("explainer")

    async def submit(self, trace_id: str, job: dict[str, Any]) -> None:
        """Persist the job of an accepted trace; returns once it is durable."""
        job["service_s"] = service_seconds(self.settings, job["completion"],
                                           job["granularity"]) * job.get("work_factor", 1.0)
        job["accepted_at"] = time.time()
        await self.queue.put(trace_id, job)

    def plan(self, requested: str) -> backpressure.Plan:
        """The degradation ladder for a job accepted now (the explainer counts its
        actions when the job reaches it)."""
        return backpressure.plan(requested, {g: self.backlog.seconds(g)
                                             for g in GRANULARITIES})

    def refuse_after(self, requested: str) -> int | None:
        """Retry-After seconds when a new `requested` job must be refused, else None.

        Judged on the granularity the job would really get: a token job at soft or
        above becomes a sentence job, so the sentence backlog decides for it."""
        effective = requested
        if requested == "token" and self.backlog.level("token") >= backpressure.SOFT:
            effective = "sentence"
        wait = backpressure.overloaded(effective, self.backlog.seconds(effective))
        if wait is not None:
            self._drops += 1
        return wait

    def estimated_wait_s(self) -> float:
        return round(self.backlog.total_s() / self.settings.explainer_workers, 3)

    def _meta(self, key: str, body: Body | None, loading: bool) -> None:
        if key == HEARTBEAT and body is not None:
            self.heartbeat = body

    async def _flush_drops(self) -> None:
        while True:
            await asyncio.sleep(DROPS_FLUSH_S)
            with contextlib.suppress(OSError):  # counted again at the next flush
                await self._write_drops()

    async def _write_drops(self) -> None:
        delta, self._drops = self._drops, 0
        if not delta:
            return
        try:
            await self.db.apply("meta", DROPS, lambda current: {
                "count": int((current or {}).get("count", 0)) + delta})
        except OSError:
            self._drops += delta
            raise
