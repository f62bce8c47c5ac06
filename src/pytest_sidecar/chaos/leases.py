"""Renews the leases of a runner's faults while the runner lives.

A daemon thread renews every fault every third of its lease. When the runner dies
(SIGKILL, a lost xdist worker, a power cut) nothing renews them and the target drops
them at `expires_at`: no fault outlives its runner by more than one lease.
"""

from __future__ import annotations

import logging
import threading

from .backends import Fault, FaultBackend

log = logging.getLogger("sidecar.chaos")


class LeaseKeeper:
    def __init__(self) -> None:
        self._faults: dict[int, tuple[FaultBackend, Fault]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.renewals = 0

    def hold(self, backend: FaultBackend, fault: Fault) -> None:
        with self._lock:
            self._faults[id(fault)] = (backend, fault)
            if self._thread is None:
                self._thread = threading.Thread(target=self._renew, name="sidecar-leases",
                                                daemon=True)
                self._thread.start()

    def release(self, fault: Fault) -> None:
        with self._lock:
            self._faults.pop(id(fault), None)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _renew(self) -> None:
        while True:
            with self._lock:
                held = list(self._faults.values())
            every = min((fault.lease_s for _, fault in held), default=3.0) / 3
            if self._stop.wait(every):
                return
            for backend, fault in held:
                try:
                    backend.renew(fault)
                    self.renewals += 1
                except Exception as exc:  # a missed renewal only shortens the fault
                    log.warning("could not renew %s on %s: %s", fault.kind, backend.name, exc)
