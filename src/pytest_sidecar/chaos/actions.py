"""What an experiment's `python` provider calls: inject and roll back faults, probe.

    {"type": "action", "name": "upstream errors at 30 %",
     "provider": {"type": "python", "module": "pytest_sidecar.chaos.actions",
                  "func": "inject_flag",
                  "arguments": {"path": "${chaos_control}", "flag": "upstream-errors",
                                "settings": {"status": 500, "percent": 30}}}}

Faults injected here are held under lease for the run that injected them (runner.py);
Chaos Toolkit can call these functions too, without the lease keeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from ..tls import tls_context
from .backends import DEFAULT_LEASE_S, ControlFile, Fault
from .leases import LeaseKeeper


class RunScope:
    """The faults one run injected, leased until rolled back."""

    def __init__(self) -> None:
        self.keeper = LeaseKeeper()
        self.faults: list[tuple[ControlFile, Fault]] = []

    def roll_back_all(self) -> list[dict[str, Any]]:
        """Roll back what is still injected; one journal entry each."""
        from .activities import iso

        entries = []
        for backend, fault in self.faults:
            if fault.rolled_back_at is None:
                started = time.time()
                status, error = "succeeded", None
                try:
                    backend.rollback(fault)
                except Exception as exc:  # said in the journal; the lease still lapses
                    status, error = "failed", str(exc)
                entry: dict[str, Any] = {
                    "activity": {"type": "action", "name": f"auto-rollback {fault.kind}"},
                         "output": None, "status": status, "start": iso(started),
                         "end": iso(time.time()), "duration": round(time.time() - started, 6)}
                if error:
                    entry["exception"] = [error]
                entries.append(entry)
            self.keeper.release(fault)
        self.keeper.stop()
        return entries


_SCOPE = threading.local()


@contextmanager
def run_scope() -> Iterator[RunScope]:
    scope = RunScope()
    _SCOPE.current = scope
    try:
        yield scope
    finally:
        _SCOPE.current = None


def inject_flag(path: str, flag: str, settings: Mapping[str, Any] | None = None,
                lease_s: float = DEFAULT_LEASE_S) -> dict[str, Any]:
    """Switch a chaos flag on, with a lease (CONTRACT §7)."""
    backend = ControlFile(path)
    fault = backend.inject(flag, settings or {}, lease_s)
    scope: RunScope | None = getattr(_SCOPE, "current", None)
    if scope is not None:
        scope.faults.append((backend, fault))
        scope.keeper.hold(backend, fault)
    return {"flag": flag, "lease_s": lease_s}


def rollback_flag(path: str, flag: str) -> dict[str, Any]:
    """Switch a flag this process set off again."""
    scope: RunScope | None = getattr(_SCOPE, "current", None)
    for backend, fault in (scope.faults if scope else []):
        if fault.kind == flag and backend.path == path and fault.rolled_back_at is None:
            backend.rollback(fault)
            scope.keeper.release(fault)  # type: ignore[union-attr]
            return {"flag": flag, "rolled_back": True}
    ControlFile(path).rollback(Fault("control_file", flag, {}, 0))
    return {"flag": flag, "rolled_back": True}


def http_status(url: str, timeout: float = 5.0, headers: Mapping[str, str] | None = None
                ) -> int:
    """A probe: the status code of GET url (0 when nothing answered)."""
    try:
        return httpx.get(url, timeout=timeout, headers=dict(headers or {}),
                         verify=tls_context()).status_code
    except httpx.HTTPError:
        return 0


def pause(seconds: float) -> float:
    """An action that waits (e.g. while the fault acts); returns the seconds waited."""
    time.sleep(seconds)
    return seconds
