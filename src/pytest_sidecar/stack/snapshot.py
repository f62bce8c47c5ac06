"""The status store's shared half: the CONTRACT §7 JSON document, one object keyed by
trace id, written atomically (temp + fsync + rename) as a snapshot of the records.

It is written off the commit path, at most once per `min_interval_s` (0.5 s: twice a
second), whenever something changed; each snapshot re-encodes only the records touched
since the last one (durable.GroupCommitRecords). A write returns to its caller once the
record is durable in the database (shared_db.py); the document follows within the
interval, and a clean stop writes the last one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from .durable import GroupCommitRecords

SNAPSHOT_INTERVAL_S = 0.5


class JsonSnapshot:
    def __init__(self, path: str, records: Callable[[], dict[str, Any]],
                 stored: Callable[[Any], Any],
                 min_interval_s: float = SNAPSHOT_INTERVAL_S) -> None:
        self.path, self.min_interval_s = path, min_interval_s
        self._file = GroupCommitRecords(path, records, stored)
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.snapshots = 0

    def read(self) -> Any:
        return self._file.read()

    def reload(self) -> None:
        self._file.reload()

    def writable(self) -> bool:
        return self._file.writable()

    def start(self) -> None:
        self._file.start()
        self._task = asyncio.create_task(self._loop(), name="status snapshot")
        # A killed process left the document behind the database: the first snapshot
        # comes at once, not at the next change.
        self._dirty.set()

    def touch(self, key: str) -> None:
        """The record `key` changed (or went): the next snapshot carries it."""
        self._file.touch(key)
        self._dirty.set()

    async def _loop(self) -> None:
        last = 0.0
        while True:
            await self._dirty.wait()
            await asyncio.sleep(max(0.0, last + self.min_interval_s - time.monotonic()))
            self._dirty.clear()
            last = time.monotonic()
            # A failed snapshot (disk full) is retried at the next change; the records
            # themselves are already durable in the database.
            with contextlib.suppress(OSError):
                await self._file.commit()
                self.snapshots += 1

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(OSError):
            await self._file.commit()
        await self._file.close()
