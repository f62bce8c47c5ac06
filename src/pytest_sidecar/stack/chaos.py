"""The chaos control file (CONTRACT §7): a JSON object of flags, re-read when it changes.

Each flag is `{enabled, percent?, tenants?, ...}`. An invalid file is ignored with a
warning (the last good flags stay), never a crash. Flags used so far:
`dependency-outage {dependency: status_store|upstream|explainer}` makes that dependency
really unavailable (the readiness switch); the chaos issue adds the rest of §7's list.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from typing import Any

log = logging.getLogger("sidecar.chaos")
POLL_S = 0.1


class ChaosControl:
    def __init__(self, path: str) -> None:
        self.path = path
        self._flags: dict[str, dict[str, Any]] = {}
        self._mtime: float | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.reload()
        self._task = asyncio.create_task(self._watch(), name="chaos-watch")

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def reload(self) -> None:
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            self._flags, self._mtime = {}, None
            return
        if mtime == self._mtime:
            return
        self._mtime = mtime
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
            if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
                raise ValueError("not an object of flag objects")
        except (OSError, ValueError) as exc:
            log.warning("chaos control %s ignored: %s", self.path, exc)
            return
        self._flags = data

    def flag(self, name: str) -> dict[str, Any] | None:
        """The flag's settings when it is enabled, else None."""
        settings = self._flags.get(name)
        return settings if settings and settings.get("enabled") else None

    def outage(self, dependency: str) -> bool:
        settings = self.flag("dependency-outage")
        return bool(settings and settings.get("dependency") == dependency)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            self.reload()
