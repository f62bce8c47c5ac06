"""GroupCommitFile: one JSON document on disk, rewritten atomically with group commit.

A writer awaits `commit()`; it returns once a flush that started after the change has
reached the disk. Changes made while a flush runs share the next one, so durability
costs one write + fsync per batch, not per change.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from typing import Any

from ..atomic import write_atomic


class GroupCommitFile:
    def __init__(self, path: str, snapshot: Callable[[], Any]) -> None:
        self.path, self._snapshot = path, snapshot
        self._dirty = asyncio.Event()
        self._waiters: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None
        self.flushes = 0

    def read(self) -> Any:
        """The document left by a previous run, or None."""
        if not os.path.exists(self.path):
            return None
        with open(self.path, encoding="utf-8") as handle:
            return json.load(handle)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"flush {os.path.basename(self.path)}")

    async def close(self) -> None:
        if self._task:
            await self.commit()
            self._task.cancel()

    def writable(self) -> bool:
        directory = os.path.dirname(self.path)
        return os.path.isdir(directory) and os.access(directory, os.W_OK)

    async def commit(self) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        self._dirty.set()
        await future

    async def _loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            waiters, self._waiters = self._waiters, []
            data = json.dumps(self._snapshot(), separators=(",", ":")).encode()
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
