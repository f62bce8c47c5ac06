"""Fault backends: one protocol, and the control file of CONTRACT §7.

Every fault carries a lease: the backend writes `expires_at` (epoch seconds) and the
runner renews it while it lives (leases.py). A target that honours §7's lease turns a
fault off by itself once its runner is gone, whatever killed the runner.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..atomic import write_atomic
from .exceptions import ChaosError

DEFAULT_LEASE_S = 15.0
# One owner id per process: leftovers of this process are told from those of others.
OWNER = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Fault:
    """One injected fault, as its backend needs it to renew and roll it back."""

    backend: str
    kind: str
    settings: Mapping[str, Any]
    lease_s: float
    injected_at: float = field(default_factory=time.time)
    rolled_back_at: float | None = None


class FaultBackend(Protocol):
    """What a fault backend offers (plugins add theirs with the
    `pytest_sidecar_fault_backends` hook)."""

    name: str

    def inject(self, kind: str, settings: Mapping[str, Any], lease_s: float) -> Fault: ...

    def renew(self, fault: Fault) -> None: ...

    def rollback(self, fault: Fault) -> None: ...

    def leftovers(self) -> list[dict[str, Any]]: ...


class ControlFile:
    """The chaos control file (CONTRACT §7): a JSON object of flags, replaced atomically.

    Read-modify-write under an flock of `<path>.lock`, so two runners editing different
    flags never lose each other's; the file itself is only ever replaced whole."""

    name = "control_file"

    def __init__(self, path: str, owner: str = OWNER) -> None:
        self.path, self.owner = path, owner

    def inject(self, kind: str, settings: Mapping[str, Any], lease_s: float = DEFAULT_LEASE_S
               ) -> Fault:
        fault = Fault(self.name, kind, dict(settings), lease_s)
        with self._editing() as flags:
            current = flags.get(kind)
            if current and _active(current) and current.get("owner") != self.owner:
                raise ChaosError(f"{self.path}: flag {kind!r} is already set by "
                                 f"{current.get('owner', 'someone else')}; not overwriting it")
            flags[kind] = {**settings, "enabled": True, "owner": self.owner,
                           "expires_at": round(time.time() + lease_s, 3)}
        return fault

    def renew(self, fault: Fault) -> None:
        with self._editing() as flags:
            current = flags.get(fault.kind)
            if current and current.get("owner") == self.owner:
                current["expires_at"] = round(time.time() + fault.lease_s, 3)

    def rollback(self, fault: Fault) -> None:
        with self._editing() as flags:
            current = flags.get(fault.kind)
            if current and current.get("owner") == self.owner:
                del flags[fault.kind]
        fault.rolled_back_at = time.time()

    def leftovers(self) -> list[dict[str, Any]]:
        """Flags still in force that no live fault of this process set: what a killed
        runner (or a person) left behind. A flag without a lease never lapses."""
        flags = self._read()
        now = time.time()
        found = []
        for kind, settings in sorted(flags.items()):
            if not isinstance(settings, dict) or not _active(settings, now):
                continue
            if settings.get("owner") == self.owner:
                continue
            expires = settings.get("expires_at")
            found.append({"backend": self.name, "path": self.path, "flag": kind,
                          "owner": settings.get("owner", "unknown"),
                          "lapses_in_s": round(expires - now, 1)
                          if isinstance(expires, int | float) else None})
        return found

    def _read(self) -> dict[str, Any]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ChaosError(f"{self.path}: not a readable chaos control file: {exc}") from None
        if not isinstance(data, dict):
            raise ChaosError(f"{self.path}: not a JSON object of flags")
        return data

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, Any]]:
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise ChaosError(f"{self.path}: its directory does not exist")
        with open(f"{self.path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            flags = self._read()
            yield flags
            write_atomic(self.path, (json.dumps(flags, indent=1) + "\n").encode())


def _active(settings: Mapping[str, Any], now: float | None = None) -> bool:
    """On, with a lease that has not lapsed (or no lease at all)."""
    if not settings.get("enabled"):
        return False
    expires = settings.get("expires_at")
    return not isinstance(expires, int | float) or expires > (now or time.time())
