"""The status store: the traces' records, durable in SQLite (records_db.py) and shared
as the CONTRACT §7 JSON document, one object keyed by trace id (snapshot.py).

Changes are durable before they are acknowledged: every writer awaits the database
commit that contains its change. Commits are grouped (one transaction and one WAL sync
serve every change made while the previous commit ran) and carry only the records
touched, so durability costs one sync per batch whatever the store's size. The JSON
document follows at most twice a second, off the commit path. A record's tenant never
changes once written.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from .policies import Policies
from .records_db import RecordsDb
from .snapshot import JsonSnapshot

TERMINAL = frozenset({"complete", "failed", "canceled", "expired"})
Record = dict[str, Any]


class TraceExists(Exception):
    """A trace id is already taken; the store never overwrites a trace."""


class TenantImmutable(Exception):
    """An update tried to change a record's tenant."""


def rfc3339(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"


class StatusStore:
    """In-memory records, durable in `<path>.db` by group commit, shared as `path`."""

    def __init__(self, path: str, policies: Policies | None = None,
                 snapshot_interval_s: float | None = None) -> None:
        self.path, self.policies = path, policies or Policies()
        self._records: dict[str, Record] = {}
        self._versions: dict[str, int] = defaultdict(int)
        self._subscribers: dict[str, set[asyncio.Queue[Record]]] = defaultdict(set)
        self._by_completion: dict[str, str] = {}
        self._listeners: list[Callable[[Record], None]] = []
        self._db = RecordsDb(path + ".db", lambda: self._records)
        self._view = JsonSnapshot(path, lambda: self._records, self.policies.stored_record,
                                  *([snapshot_interval_s] if snapshot_interval_s else []))

    @property
    def flushes(self) -> int:
        return self._db.flushes

    # -- lifecycle -------------------------------------------------------------------
    def load(self) -> None:
        """Read the records a previous run left (a restart keeps every trace); a store
        that so far lived in the JSON document alone moves into the database."""
        self._records = self._db.read()
        if not self._records:
            self._records = self._view.read() or {}
            if self._records:
                self._db.import_records(self._records)
        self._view.reload()
        self._by_completion = {r["completion_id"]: tid for tid, r in self._records.items()
                               if r.get("completion_id")}

    def start(self) -> None:
        self._db.start()
        self._view.start()

    async def close(self) -> None:
        try:
            await self._db.close()
        finally:
            await self._view.close()

    def writable(self) -> bool:
        return self._view.writable()

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
        await self._db.commit_record(trace_id)
        self._view.touch(trace_id)
        for queue in self._subscribers.get(trace_id, ()):
            queue.put_nowait(snapshot)
        for listener in self._listeners:
            listener(dict(snapshot))
        return snapshot
