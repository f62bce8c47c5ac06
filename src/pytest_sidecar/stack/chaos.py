"""The chaos control file (CONTRACT §7): a JSON object of flags, re-read when it changes.

The file is looked at on use: every flag lookup compares the file's identity (inode,
mtime in ns, size) with the one last read, so a flag written just before a request is in
force for that request. Writers rename a temporary file into place, so even two writes
within one mtime tick differ by inode. A stat costs about a microsecond; a poll would
let a request through in the gap before its next tick.

Each flag is `{enabled, percent?, tenants?, expires_at?, ...}`. An invalid file is
ignored with a warning (the last good flags stay), never a crash. A flag whose lease
(`expires_at`, epoch seconds) has passed is off, so a fault a killed runner left behind
lapses by itself. Where each flag bites:

- `fail-attribution {mode}`, `slow-sae {jitter_ms}`, `drop-s3`: the explainer's job;
- `rate-limit-spike {severity}`: the gateway's admission (requests.py);
- `upstream-errors {status}`, `upstream-latency {ms}`: the upstream client;
- `dependency-outage {dependency}`: readiness, the explain admission, the explainer.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from typing import Any

log = logging.getLogger("sidecar.chaos")


class ChaosControl:
    def __init__(self, path: str, leases: bool = True) -> None:
        self.path, self.leases = path, leases  # leases: a flag past expires_at is off
        self._flags: dict[str, dict[str, Any]] = {}
        self._seen: tuple[int, int, int] | None = None  # (inode, mtime ns, size) read
        self._random = random.Random()

    def start(self) -> None:
        self.reload()

    async def close(self) -> None:
        """Nothing runs in the background: the file is read on use."""

    def reload(self) -> None:
        """Read the file again if it is not the one last read."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            self._flags, self._seen = {}, None
            return
        seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if seen == self._seen:
            return
        self._seen = seen
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
        """The flag's settings when it is enabled and its lease holds, else None."""
        self.reload()
        settings = self._flags.get(name)
        if not settings or not settings.get("enabled"):
            return None
        expires = settings.get("expires_at")
        if isinstance(expires, int | float) and not isinstance(expires, bool) \
                and expires <= time.time() and self.leases:
            return None  # the lease lapsed: the runner that set it is gone or late
        return settings

    def hits(self, name: str, tenant: str | None = None) -> dict[str, Any] | None:
        """The flag's settings when it applies to this one operation: on, its tenant in
        scope (when the flag names tenants), and the `percent` draw hit."""
        settings = self.flag(name)
        if settings is None:
            return None
        tenants = settings.get("tenants")
        if isinstance(tenants, list) and tenants and tenant not in tenants:
            return None
        percent = settings.get("percent", 100)
        if not isinstance(percent, int | float) or isinstance(percent, bool):
            percent = 100
        if percent < 100 and self._random.random() * 100 >= percent:
            return None
        return settings

    def outage(self, dependency: str) -> bool:
        settings = self.flag("dependency-outage")
        return bool(settings and settings.get("dependency") == dependency)

