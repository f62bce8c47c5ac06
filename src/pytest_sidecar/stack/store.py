"""The status store: the traces' records, durable in the database the gateway and the
explainer share (shared_db.py), and shared with co-located readers as the CONTRACT §7
JSON document, one object keyed by trace id (snapshot.py).

Changes are durable before they are acknowledged: every writer awaits the commit that
contains its change. A change is an operation run against the record as the database
holds it at commit time, so a move is judged against the latest state whichever process
wrote it: a trace canceled by the gateway is never completed by the explainer, and its
states never go backwards. Each process reads from its own copy of the records, which
follows the database: its own writes at once, the other process's within the feed's
poll interval. The JSON document is written by the gateway's process alone, at most
twice a second, off the commit path. A record's tenant never changes once written.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from .exceptions import StackError
from .policies import Policies
from .shared_db import UNCHANGED, Body, SharedDb, Unchanged
from .snapshot import JsonSnapshot

TERMINAL = frozenset({"complete", "failed", "canceled", "expired"})
Record = dict[str, Any]


class TraceExists(StackError):
    """A trace id is already taken; the store never overwrites a trace."""


class TenantImmutable(StackError):
    """An update tried to change a record's tenant."""


def rfc3339(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"


class StatusStore:
    """The records of `db` (kind "record"), kept in memory as the database has them;
    with `snapshot=True` also shared as the JSON document `path`."""

    def __init__(self, path: str, policies: Policies | None = None,
                 snapshot_interval_s: float | None = None, *, db: SharedDb | None = None,
                 snapshot: bool = True) -> None:
        self.path, self.policies = path, policies or Policies()
        self._records: dict[str, Record] = {}
        self._versions: dict[str, int] = defaultdict(int)
        self._subscribers: dict[str, set[asyncio.Queue[Record]]] = defaultdict(set)
        self._by_completion: dict[str, str] = {}
        self._listeners: list[Callable[[Record], None]] = []
        self._owns_db = db is None
        self.db = db or SharedDb(path + ".db")
        self.db.follow("record", self._followed)
        self._view = (JsonSnapshot(path, lambda: self._records, self.policies.stored_record,
                                   *([snapshot_interval_s] if snapshot_interval_s else []))
                      if snapshot else None)

    @property
    def flushes(self) -> int:
        return self.db.flushes

    # -- lifecycle -------------------------------------------------------------------
    def load(self) -> None:
        """Read the records a previous run left (a restart keeps every trace); a store
        that so far lived in the JSON document alone moves into the database. With a
        database of its own; a shared one is loaded by its owner."""
        if self._owns_db:
            self.db.load()
        self.adopt_document()

    def adopt_document(self) -> None:
        """A store that so far lived in the JSON document alone moves into the database."""
        if not self._records and self._view is not None:
            legacy = self._view.read() or {}
            if legacy:
                self.db.import_entries("record", legacy)
        if self._view is not None:
            self._view.reload()

    def start(self) -> None:
        if self._owns_db:
            self.db.start()
        if self._view is not None:
            self._view.start()

    async def close(self) -> None:
        try:
            if self._owns_db:
                await self.db.close()
        finally:
            if self._view is not None:
                await self._view.close()

    def writable(self) -> bool:
        if self._view is not None:
            return self._view.writable()
        directory = os.path.dirname(os.path.abspath(self.db.path))
        return os.access(directory, os.W_OK)

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
        trace_id, refuse = record["trace_id"], self.policies.refuse_taken_ids

        def create(current: Body | None) -> Body:
            if current is not None and refuse:
                raise TraceExists(trace_id)
            return dict(record)

        created = await self.db.apply("record", trace_id, create)
        assert created is not None
        return created

    async def update(self, trace_id: str, *, after_end: bool = False,
                     **fields: Any) -> Record | None:
        """Change non-state fields (progress, stage, ...); None (and no change) for an
        unknown trace, or an ended one unless `after_end`."""
        if "state" in fields:
            raise ValueError("use transition() to change state")

        def update(current: Body | None) -> Body | Unchanged:
            if current is None or (current["state"] in TERMINAL and not after_end):
                return UNCHANGED
            _keep_tenant(trace_id, current, fields)
            return {**current, **fields, "updated_at": rfc3339(time.time())}

        return await self.db.apply("record", trace_id, update)

    async def transition(self, trace_id: str, state: str, **fields: Any) -> Record | None:
        """Move a trace forward; None (and no change) if that move is not allowed now."""
        may_move = self.policies.may_move

        def move(current: Body | None) -> Body | Unchanged:
            if current is None or not may_move(current["state"], state):
                return UNCHANGED
            _keep_tenant(trace_id, current, fields)
            return {**current, **fields, "state": state, "updated_at": rfc3339(time.time())}

        return await self.db.apply("record", trace_id, move)

    def add_listener(self, callback: Callable[[Record], None]) -> None:
        """Call `callback(record)` after every durable change of any trace, whichever
        process made it."""
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
    def _followed(self, trace_id: str, body: Body | None, loading: bool) -> None:
        """A version of a record, committed by this process or read from the feed."""
        if body is None:
            self._records.pop(trace_id, None)
        else:
            self._records[trace_id] = body
            if body.get("completion_id"):
                self._by_completion[body["completion_id"]] = trace_id
        self._versions[trace_id] += 1
        if self._view is not None:
            self._view.touch(trace_id)
        if loading or body is None:
            return
        for queue in self._subscribers.get(trace_id, ()):
            queue.put_nowait(dict(body))
        for listener in self._listeners:
            listener(dict(body))


def _keep_tenant(trace_id: str, current: Body, fields: dict[str, Any]) -> None:
    if "tenant_id" in fields and fields["tenant_id"] != current["tenant_id"]:
        raise TenantImmutable(trace_id)
