"""A map of records (id -> JSON object) kept in memory and durable in one SQLite database
of its own, in WAL mode: the webhook registrations, which the gateway alone reads and
writes. (The traces, which two processes share, live in shared_db.py.)

A group commit (durable.GroupCommit) upserts only the records touched since the last
one, in one transaction, and returns once SQLite has synced its write-ahead log: the
cost of a commit follows the batch, not the number of records. Rewriting one JSON
document per commit made each commit O(size); SQLite's WAL with synchronous=FULL is
durable at each commit, survives a SIGKILL mid-write, and is in the standard library.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from .durable import Flush, GroupCommit

SCHEMA = "CREATE TABLE IF NOT EXISTS records (id TEXT PRIMARY KEY, body TEXT NOT NULL)"


class RecordsDb(GroupCommit):
    """Records (id -> JSON object) in SQLite; `commit_record(id)` returns once the
    record as it is now (or its removal) is durable."""

    def __init__(self, path: str, records: Callable[[], dict[str, Any]]) -> None:
        self.path, self._records = path, records
        self._touched: set[str] = set()
        self._lock = threading.Lock()  # the flush thread and load() never overlap; cheap
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # WAL synced at every commit
        self._db.execute(SCHEMA)

        self._in_flush: set[str] = set()

        def prepare() -> Flush:
            current = self._records()  # on the event loop: a consistent view
            upserts = [(key, json.dumps(current[key], separators=(",", ":")))
                       for key in self._touched if key in current]
            deletes = [(key,) for key in self._touched if key not in current]
            self._in_flush, self._touched = self._touched, set()
            return lambda: self._write(upserts, deletes)

        def failed() -> None:
            # A failed transaction wrote nothing: its records go in the next one, or a
            # record whose writer saw the error would never reach the disk.
            self._touched |= self._in_flush

        super().__init__("records.db", prepare, failed)

    def _write(self, upserts: list[tuple[str, str]], deletes: list[tuple[str]]) -> None:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("INSERT INTO records (id, body) VALUES (?, ?) "
                                     "ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                                     upserts)
                self._db.executemany("DELETE FROM records WHERE id = ?", deletes)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise OSError(f"status store: {exc}") from exc

    def read(self) -> dict[str, Any]:
        """Every record a previous run left (an empty store: {})."""
        with self._lock:
            rows = self._db.execute("SELECT id, body FROM records").fetchall()
        return {key: json.loads(body) for key, body in rows}

    def import_records(self, records: dict[str, Any]) -> None:
        """Write `records` at once (a store that so far lived in the JSON file only)."""
        self._write([(key, json.dumps(value, separators=(",", ":")))
                     for key, value in records.items()], [])

    async def commit_record(self, key: str) -> None:
        self._touched.add(key)
        await self.commit()

    async def close(self) -> None:
        await super().close()
        with self._lock:
            self._db.close()
