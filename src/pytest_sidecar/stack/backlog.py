"""Backlog seconds (CONTRACT §5): the explanation work accepted and not yet finished, per
granularity, divided by throughput. The gateway (admission, the degradation ladder) and
the explainer (its metrics) each keep one, following the shared database: a job adds its
service seconds, its trace's end takes them away.

A sentence job waits for the sentence backlog only and a token job for all of it, since
sentence jobs leave the queue first (jobqueue.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import backpressure
from .metrics import GRANULARITIES
from .shared_db import SharedDb
from .store import TERMINAL, StatusStore


class Backlog:
    """Pending service seconds by granularity; `slowdown()` is how much slower than
    estimated jobs really run (>= 1), so a slow explainer grows the backlog it reports,
    not only a long queue."""

    def __init__(self, db: SharedDb, store: StatusStore, workers: int,
                 slowdown: Callable[[], float]) -> None:
        self.store, self.workers, self.slowdown = store, workers, slowdown
        self._pending: dict[str, tuple[str, float]] = {}  # trace -> (granularity, seconds)
        self.by_granularity = dict.fromkeys(GRANULARITIES, 0.0)
        db.follow("job", self._job)
        db.follow("record", self._record)  # after the store's own follower: it reads it

    def seconds(self, granularity: str) -> float:
        """Backlog seconds of a granularity: the work a new job of it waits behind, per
        worker."""
        ahead = self.by_granularity["sentence"]
        if granularity == "token":
            ahead += self.by_granularity["token"]
        return ahead * self.slowdown() / self.workers

    def level(self, granularity: str) -> int:
        """The backpressure level of a granularity now (0 normal, 1 soft, 2 hard)."""
        return backpressure.level(granularity, self.seconds(granularity))

    def total_s(self) -> float:
        return sum(self.by_granularity.values())

    def _job(self, trace_id: str, job: dict[str, Any] | None, loading: bool) -> None:
        if job is None or trace_id in self._pending:
            return
        record = self.store.get(trace_id)
        if record is not None and record["state"] in TERMINAL:
            return  # e.g. canceled while its stream still ran
        granularity = job.get("granularity", "sentence")
        self._pending[trace_id] = (granularity, float(job.get("service_s", 0.0)))
        self.by_granularity[granularity] += self._pending[trace_id][1]

    def _record(self, trace_id: str, record: dict[str, Any] | None, loading: bool) -> None:
        if record is not None and record["state"] not in TERMINAL:
            return
        granularity, seconds = self._pending.pop(trace_id, ("sentence", 0.0))
        self.by_granularity[granularity] = max(0.0, self.by_granularity[granularity] - seconds)
