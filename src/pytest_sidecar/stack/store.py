"""The JSON status store (CONTRACT §7): one JSON object keyed by trace id.

Changes are durable before they are acknowledged: every writer awaits the flush that
contains its change. Flushes are grouped (one atomic write + fsync serves every change
made while the previous flush ran), so durability costs one fsync per batch, not per
request. A record's tenant never changes once written.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import defaultdict
from typing import Any

from ..atomic import write_atomic

TERMINAL = frozenset({"complete", "failed", "canceled", "expired"})
_NEXT: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "failed", "canceled"}),
    "running": frozenset({"partial", "complete", "failed", "canceled"}),
    "partial": frozenset({"complete", "failed", "canceled"}),
    "complete": frozenset({"expired"}),
    "failed": frozenset(),
    "canceled": frozenset(),
    "expired": frozenset(),
}

Record = dict[str, Any]


class TraceExists(Exception):
    """A trace id is already taken; the store never overwrites a trace."""


class TenantImmutable(Exception):
    """An update tried to change a record's tenant."""


def rfc3339(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"


class StatusStore:
    """In-memory records, persisted atomically to one JSON file with group commit."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._records: dict[str, Record] = {}
        self._versions: dict[str, int] = defaultdict(int)
        self._subscribers: dict[str, set[asyncio.Queue[Record]]] = defaultdict(set)
        self._dirty = asyncio.Event()
        self._waiters: list[asyncio.Future[None]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.flushes = 0

    # -- lifecycle -------------------------------------------------------------------
    def load(self) -> None:
        """Read the file left by a previous run (a restart keeps every trace)."""
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as handle:
                self._records = json.load(handle)

    def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_loop(), name="status-store-flush")

    async def close(self) -> None:
        if self._flusher:
            await self._commit()
            self._flusher.cancel()

    def writable(self) -> bool:
        directory = os.path.dirname(self.path)
        return os.path.isdir(directory) and os.access(directory, os.W_OK)

    # -- reads -----------------------------------------------------------------------
    def get(self, trace_id: str) -> Record | None:
        record = self._records.get(trace_id)
        return dict(record) if record is not None else None

    def version(self, trace_id: str) -> int:
        return self._versions[trace_id]

    def exists(self, trace_id: str) -> bool:
        return trace_id in self._records

    def ids_in_states(self, states: frozenset[str]) -> list[str]:
        return [tid for tid, rec in self._records.items() if rec["state"] in states]

    # -- writes (each returns once the change is on disk) -----------------------------
    async def create(self, record: Record) -> Record:
        trace_id = record["trace_id"]
        if trace_id in self._records:
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
        if record is None or state not in _NEXT[record["state"]]:
            return None
        if "tenant_id" in fields and fields["tenant_id"] != record["tenant_id"]:
            raise TenantImmutable(trace_id)
        record.update(fields, state=state, updated_at=rfc3339(time.time()))
        return await self._changed(trace_id)

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
        snapshot = dict(self._records[trace_id])
        await self._commit()
        for queue in self._subscribers.get(trace_id, ()):
            queue.put_nowait(snapshot)
        return snapshot

    async def _commit(self) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        self._dirty.set()
        await future

    async def _flush_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            waiters, self._waiters = self._waiters, []
            data = json.dumps(self._records, separators=(",", ":")).encode()
            try:
                await asyncio.to_thread(write_atomic, self.path, data)
                self.flushes += 1
            except OSError as exc:
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(exc)
                continue
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
