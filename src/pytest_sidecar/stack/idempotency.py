"""Idempotency keys (CONTRACT §2.8): same key + same request + same tenant within 24 h
replays the first response; the same key with another request is refused.

Records are durable (group-committed JSON file) before the first response leaves, so a
replay survives a restart. Only successful responses are kept: a failed attempt may be
retried with the same key.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .durable import GroupCommitFile

WINDOW_S = 24 * 3600.0
MAX_KEY_LEN = 128


def request_digest(body: Any, headers: dict[str, Any]) -> str:
    """What makes two requests "the same": the body and the explain headers."""
    canonical = json.dumps({"body": body, "headers": headers}, sort_keys=True,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyStore:
    def __init__(self, path: str, per_tenant: bool = True, checks_body: bool = True) -> None:
        self.per_tenant, self.checks_body = per_tenant, checks_body  # §2.8, both
        self._records: dict[str, dict[str, Any]] = {}
        self._inflight: dict[str, asyncio.Future[None]] = {}
        self._file = GroupCommitFile(path, lambda: self._records)

    def load(self) -> None:
        now = time.time()
        self._records = {k: v for k, v in (self._file.read() or {}).items()
                         if v["created"] + WINDOW_S > now}

    def start(self) -> None:
        self._file.start()

    async def close(self) -> None:
        await self._file.close()

    def _slot(self, tenant: str, key: str) -> str:
        return f"{tenant}\x1f{key}" if self.per_tenant else key

    async def run(self, tenant: str, key: str, digest: str,
                  produce: Callable[[], Awaitable[tuple[int, dict[str, Any]]]]
                  ) -> tuple[int, dict[str, Any], bool] | None:
        """(status, body, replayed) for this key; None when the key was used for another
        request. `produce` runs only if no stored response exists for the key."""
        slot = self._slot(tenant, key)
        while slot in self._inflight:  # the same key in flight: wait for its outcome
            await asyncio.shield(self._inflight[slot])
        record = self._records.get(slot)
        if record and record["created"] + WINDOW_S > time.time():
            if record["digest"] != digest and self.checks_body:
                return None
            return record["status"], record["body"], True
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inflight[slot] = done
        try:
            status, body = await produce()
            if status == 200:
                self._records[slot] = {"digest": digest, "status": status, "body": body,
                                       "created": time.time()}
                await self._file.commit()
            return status, body, False
        finally:
            del self._inflight[slot]
            done.set_result(None)
