"""The JSON status store (CONTRACT §7): one JSON object keyed by trace id.

Changes are durable before they are acknowledged: every writer awaits the flush that
contains its change. Flushes are grouped (one atomic write + fsync serves every change
made while the previous flush ran), so durability costs one fsync per batch, not per
request. A record's tenant never changes once written.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from .durable import GroupCommitRecords
from .policies import Policies

TERMINAL = frozenset({"complete", "failed", "canceled", "expired"})
Record = dict[str, Any]


class TraceExists(Exception):
    """A trace id is already taken; the store never overwrites a trace."""


class TenantImmutable(Exception):
    """An update tried to change a record's tenant."""


def rfc3339(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"


class StatusStore:
    """In-memory records, persisted atomically to one JSON file with group commit."""

    def __init__(self, path: str, policies: Policies | None = None) -> None:
        self.path, self.policies = path, policies or Policies()
        self._records: dict[str, Record] = {}
        self._versions: dict[str, int] = defaultdict(int)
        self._subscribers: dict[str, set[asyncio.Queue[Record]]] = defaultdict(set)
        self._by_completion: dict[str, str] = {}
        self._listeners: list[Callable[[Record], None]] = []
        self._file = GroupCommitRecords(path, lambda: self._records,
                                        self.policies.stored_record)

    @property
    def flushes(self) -> int:
        return self._file.flushes

    # -- lifecycle -------------------------------------------------------------------
    def load(self) -> None:
        """Read the file left by a previous run (a restart keeps every trace)."""
        self._records = self._file.read() or {}
        self._file.reload()
        self._by_completion = {r["completion_id"]: tid for tid, r in self._records.items()
                               if r.get("completion_id")}

    def start(self) -> None:
        self._file.start()

    async def close(self) -> None:
        await self._file.close()

    def writable(self) -> bool:
        return self._file.writable()

    # -- reads -----------------------------------------------------------------------
    def get(self, trace_id: str) -> Record | None:
        record = self._records.get(trace_id)
        return dict(record) if record is not None else None

    def version(self, trace_id: str) -> int:
        return self._versions[trace_id]

    def trace_of_completion(self, completion_id: str) -> str | None:
        return self._by_completion.get(completion_id)

    def exists(self, trace_id: str) -> bool:
        return trace_id in self._records

    def ids_in_states(self, states: frozenset[str]) -> list[str]:
        return [tid for tid, rec in self._records.items() if rec["state"] in states]

    # -- writes (each returns once the change is on disk) -----------------------------
    async def create(self, record: Record) -> Record:
        trace_id = record["trace_id"]
        if trace_id in self._records and self.policies.refuse_taken_ids:
            raise TraceExists(trace_id)
        self._records[trace_id] = dict(record)
        return await self._changed(trace_id)

    async def update(self, trace_id: str, **fields: Any) -> Record:
        """Change non-state fields (progress, stage, ...)."""
        record = self._records[trace_id]
        if "tenant_id" in fields and fields["tenant_id"] != record["tenant_id"]:
            raise TenantImmutable(trace_id)
        if "state" in fields:
            raise ValueError("use transition() to change state")
        record.update(fields, updated_at=rfc3339(time.time()))
        return await self._changed(trace_id)

    async def transition(self, trace_id: str, state: str, **fields: Any) -> Record | None:
        """Move a trace forward; None (and no change) if that move is not allowed now."""
        record = self._records.get(trace_id)
        if record is None or not self.policies.may_move(record["state"], state):
            return None
        if "tenant_id" in fields and fields["tenant_id"] != record["tenant_id"]:
            raise TenantImmutable(trace_id)
        record.update(fields, state=state, updated_at=rfc3339(time.time()))
        return await self._changed(trace_id)

    def add_listener(self, callback: Callable[[Record], None]) -> None:
        """Call `callback(record)` after every durable change of any trace."""
        self._listeners.append(callback)

    def subscribe(self, trace_id: str) -> asyncio.Queue[Record]:
        queue: asyncio.Queue[Record] = asyncio.Queue()
        self._subscribers[trace_id].add(queue)
        return queue

    def unsubscribe(self, trace_id: str, queue: asyncio.Queue[Record]) -> None:
        self._subscribers[trace_id].discard(queue)
        if not self._subscribers[trace_id]:
            del self._subscribers[trace_id]

    # -- internals -------------------------------------------------------------------
    async def _changed(self, trace_id: str) -> Record:
        self._versions[trace_id] += 1
        completion_id = self._records[trace_id].get("completion_id")
        if completion_id:
            self._by_completion[completion_id] = trace_id
        snapshot = dict(self._records[trace_id])
        await self._file.commit_record(trace_id)
        for queue in self._subscribers.get(trace_id, ()):
            queue.put_nowait(snapshot)
        for listener in self._listeners:
            listener(dict(snapshot))
        return snapshot
