"""The database the gateway and the explainer processes share: trace records, explainer
jobs and the processes' notes to each other, in one SQLite file in WAL mode.

Writes are operations, not values: a function of the entry as the database holds it
*now*, run inside the write transaction. `BEGIN IMMEDIATE` holds SQLite's write lock
across processes, so a state change is judged against the latest state whoever wrote it
(the gateway's cancel and the explainer's complete cannot both win). Operations are
grouped: one transaction and one WAL sync serve every operation submitted while the
previous commit ran, so durability costs one sync per batch whatever the store's size.

Every change gets the next sequence number and a line in a change log beside the entries.
A process learns of the other's writes by reading the log past the last number it saw (a
change feed, read when the writer rings this process's doorbell after its commit, and
every second in any case); its own writes reach its followers as soon as they commit. A
follower sees each version of an entry once, in commit order: a trace that went running
and complete between two reads is heard in both states (the live stream reports every
state change, §2.5). The log keeps the last LOG_KEEP changes; a follower
that fell further behind reads the entries' latest versions instead. A removed entry
stays as a tombstone (body NULL), so removals are followed too.

Why SQLite: WAL with synchronous=FULL is durable at each commit, survives a SIGKILL
mid-write, lets readers in one process read while the other writes, and is in the
standard library.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .doorbell import Doorbell

log = logging.getLogger("sidecar.stack")
FEED_INTERVAL_S = 0.01  # the feed's shortest gap between two reads
LOG_KEEP = 100_000  # changes kept in the log (minutes of the heaviest load)
PRUNE_EVERY = 1_000  # commits between two prunings of the log
SCHEMA = ("CREATE TABLE IF NOT EXISTS entries (kind TEXT NOT NULL, id TEXT NOT NULL, "
          "body TEXT, seq INTEGER NOT NULL, PRIMARY KEY (kind, id))",
          "CREATE INDEX IF NOT EXISTS entries_seq ON entries (seq)",
          "CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, "
          "id TEXT NOT NULL, body TEXT)")


class Unchanged:
    """An operation's answer that leaves the entry as it is (a move not allowed now)."""


UNCHANGED = Unchanged()
REMOVED = None  # an operation returning None removes the entry
Body = dict[str, Any]
Operation = Callable[[Body | None], Body | Unchanged | None]
Follower = Callable[[str, Body | None, bool], None]  # (id, body or None if removed, loading)


@dataclass
class _Pending:
    """One submitted operation; the flush thread fills in its outcome."""

    kind: str
    key: str
    operation: Operation
    changed: bool = False
    body: Body | None = None
    seq: int = 0
    error: BaseException | None = None
    done: asyncio.Future[None] | None = field(default=None, repr=False)


class SharedDb:
    """`await apply(kind, id, operation)` returns the entry after the operation, once
    durable (or None when the operation left it unchanged); `follow(kind, callback)`
    hears every version of every entry of a kind, this process's and the others'."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._write = self._connect()  # used by the flush thread only
        self._read = self._connect()  # used on the event loop only
        self._write_lock = threading.Lock()
        self._followers: dict[str, list[Follower]] = {}
        self._seen: dict[tuple[str, str], int] = {}  # the version each entry was seen at
        self._position = 0  # the highest sequence number followed
        self._pending: list[_Pending] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._bell: Doorbell | None = None
        self.flushes = 0

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                             timeout=30.0)  # waits out the other process's transaction
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # the WAL is synced at every commit
        for statement in SCHEMA:
            db.execute(statement)
        return db

    # -- reading -----------------------------------------------------------------------
    def follow(self, kind: str, follower: Follower) -> None:
        """Call `follower(id, body, loading)` for every version of every `kind` entry,
        from load() on (loading=True for what was there at load)."""
        self._followers.setdefault(kind, []).append(follower)

    def load(self) -> None:
        """Hand the followers every live entry the database holds now."""
        # One read transaction: the entries and the position they reach are one snapshot,
        # or a write committed between the two reads would be neither loaded nor followed.
        self._read.execute("BEGIN")
        try:
            rows = self._read.execute("SELECT kind, id, body, seq FROM entries "
                                      "WHERE body IS NOT NULL ORDER BY seq").fetchall()
            (top,) = self._read.execute("SELECT COALESCE(MAX(seq), 0) FROM entries"
                                        ).fetchone()
        finally:
            self._read.execute("COMMIT")
        for kind, key, body, seq in rows:
            self._deliver(kind, key, json.loads(body), seq, loading=True)
        self._position = max(self._position, top)

    def count(self, kind: str) -> int:
        """Live entries of a kind (for tests and figures)."""
        (total,) = self._read.execute("SELECT COUNT(*) FROM entries WHERE kind = ? AND "
                                      "body IS NOT NULL", (kind,)).fetchone()
        return int(total)

    def poll(self) -> int:
        """Deliver what other processes committed since the last poll; how many."""
        rows = self._read.execute("SELECT kind, id, body, seq FROM changes WHERE seq > ? "
                                  "ORDER BY seq", (self._position,)).fetchall()
        if rows and rows[0][3] != self._position + 1:
            # The log no longer reaches back to where this process was (a long freeze):
            # the latest version of every entry changed since will do.
            rows = self._read.execute("SELECT kind, id, body, seq FROM entries WHERE seq > ? "
                                      "ORDER BY seq", (self._position,)).fetchall()
        for kind, key, body, seq in rows:
            self._deliver(kind, key, json.loads(body) if body is not None else None, seq)
            self._position = max(self._position, seq)
        return len(rows)

    def _deliver(self, kind: str, key: str, body: Body | None, seq: int,
                 loading: bool = False) -> None:
        if self._seen.get((kind, key), 0) >= seq:
            return  # this version (this process's own write) was delivered already
        self._seen[(kind, key)] = seq
        for follower in self._followers.get(kind, ()):
            follower(key, body, loading)

    # -- writing -----------------------------------------------------------------------
    def import_entries(self, kind: str, entries: dict[str, Body]) -> None:
        """Write `entries` at once, before start() (a store that so far lived elsewhere)."""
        batch = [_Pending(kind, key, constant(body)) for key, body in entries.items()]
        self._commit(batch)
        for pending in batch:
            if pending.changed:
                self._deliver(kind, pending.key, pending.body, pending.seq, loading=True)

    async def apply(self, kind: str, key: str, operation: Operation) -> Body | None:
        """Run `operation` on the entry as committed now; return its result once durable,
        or None when it left the entry unchanged. Its exceptions are raised here."""
        pending = _Pending(kind, key, operation,
                           done=asyncio.get_running_loop().create_future())
        self._pending.append(pending)
        self._wake.set()
        assert pending.done is not None
        await pending.done
        if pending.error is not None:
            raise pending.error
        return pending.body if pending.changed else None

    def start(self) -> None:
        try:
            bell = Doorbell(self.path + ".bells")
            bell.listen()
            self._bell = bell
        except OSError:  # no bell: the feed polls every FEED_INTERVAL_S
            self._bell = None
        self._tasks = [asyncio.create_task(self._commit_loop(), name="shared db commit"),
                       asyncio.create_task(self._feed_loop(), name="shared db feed")]

    async def close(self, timeout: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while self._pending and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.005)  # what was submitted still commits
        for task in self._tasks:
            task.cancel()
        try:
            await asyncio.gather(*self._tasks, return_exceptions=True)
            with self._write_lock:
                self._write.close()
            self._read.close()
        finally:
            if self._bell is not None:
                self._bell.close()

    async def _feed_loop(self) -> None:
        while True:
            # At most one read per FEED_INTERVAL_S under load; when idle, one per ring.
            await asyncio.sleep(FEED_INTERVAL_S)
            if self._bell is not None:
                await self._bell.wait()
            try:
                self.poll()
            except sqlite3.Error:
                pass  # a locked or busy file: the next read
            except Exception:  # a follower's bug must not stop this process's feed
                log.exception("a follower of the shared database failed")

    async def _commit_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            try:
                await asyncio.to_thread(self._commit, batch)
                self.flushes += 1
                if self._bell is not None and any(p.changed for p in batch):
                    self._bell.ring()
            except Exception as exc:  # nothing of the batch was written; go on
                for pending in batch:
                    pending.error, pending.changed = exc, False
            # Own writes reach the followers before their writers resume (unless the feed,
            # which may read them as soon as they commit, was first).
            for pending in batch:
                if pending.changed and pending.error is None:
                    self._deliver(pending.kind, pending.key, pending.body, pending.seq)
                assert pending.done is not None
                if not pending.done.done():
                    pending.done.set_result(None)

    def _commit(self, batch: list[_Pending]) -> None:
        """One transaction for the batch (in a thread): read, operate, write, sync."""
        with self._write_lock:
            db = self._write
            try:
                db.execute("BEGIN IMMEDIATE")
                (seq,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM entries").fetchone()
                current: dict[tuple[str, str], Body | None] = {}
                for pending in batch:
                    seq = self._operate(db, pending, current, seq)
                # An entry several operations changed is written once, as the last left it.
                final = {(p.kind, p.key): p.seq for p in batch if p.changed}
                db.executemany("INSERT INTO entries (kind, id, body, seq) VALUES (?, ?, ?, ?) "
                               "ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body, "
                               "seq = excluded.seq",
                               [(kind, key, _encode_or_none(current[(kind, key)]), at)
                                for (kind, key), at in final.items()])
                db.executemany("INSERT INTO changes (seq, kind, id, body) VALUES (?, ?, ?, ?)",
                               [(p.seq, p.kind, p.key, _encode_or_none(p.body))
                                for p in batch if p.changed])
                if self.flushes % PRUNE_EVERY == 0:
                    db.execute("DELETE FROM changes WHERE seq <= ?", (seq - LOG_KEEP,))
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise OSError(f"shared database: {exc}") from exc

    @staticmethod
    def _operate(db: sqlite3.Connection, pending: _Pending,
                 current: dict[tuple[str, str], Body | None], seq: int) -> int:
        where = (pending.kind, pending.key)
        if where not in current:
            row = db.execute("SELECT body FROM entries WHERE kind = ? AND id = ?",
                             where).fetchone()
            current[where] = json.loads(row[0]) if row and row[0] is not None else None
        before = current[where]
        try:
            # The operation gets a copy: a refusal must leave nothing half-changed.
            after = pending.operation(None if before is None else json.loads(_encode(before)))
        except Exception as exc:  # the writer's to handle (TraceExists, ...)
            pending.error = exc
            return seq
        if isinstance(after, Unchanged) or (after is None and before is None):
            return seq
        current[where] = after
        pending.changed, pending.body, pending.seq = True, after, seq + 1
        return seq + 1


def constant(body: Body) -> Operation:
    """The operation that writes `body` whatever was there."""
    return lambda _: body


def _encode(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _encode_or_none(body: Body | None) -> str | None:
    return None if body is None else _encode(body)
