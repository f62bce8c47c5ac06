"""Run an experiment: hypothesis before, method (with the hypothesis checked during it,
when asked), hypothesis after, then rollbacks, which always run: on success, on a
failed hypothesis, on an error, on Ctrl-C and on SIGTERM. Faults the method injected
through `actions` are held under lease while the run lives, and any the rollbacks did not
remove are removed at the end ("auto-rollback" entries), so none outlives the run.

One deliberate difference from Chaos Toolkit, which leaves a run `completed` when a
method activity raised: here the run is `failed`. A fault that was never injected, or a
probe that could not look, proves nothing about the target, so it must not read as a
pass.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from . import actions
from .activities import execute
from .experiment import resolve_configuration, validate, within_tolerance
from .journal import finish, new_journal

log = logging.getLogger("sidecar.chaos")


class Interrupted(BaseException):
    """SIGTERM arrived: stop the method, roll back, and say so. A BaseException, like
    KeyboardInterrupt, so no activity's error handling swallows it."""


def run_experiment(experiment: Mapping[str, Any], configuration: Mapping[str, Any] | None = None,
                   *, continuous: bool = False, frequency_s: float = 1.0,
                   fail_fast_ratio: float | None = None) -> dict[str, Any]:
    """The journal of one run. `continuous`: check the hypothesis every `frequency_s`
    during the method; with `fail_fast_ratio` (0..1) the method stops once that share of
    the checks so far deviated."""
    validate(experiment)
    given = dict(configuration or {})  # what the caller supplies needs no environment
    own = {k: v for k, v in (experiment.get("configuration") or {}).items() if k not in given}
    config = {**resolve_configuration(own, os.environ), **given}
    started = time.time()
    journal = new_journal(experiment)
    with actions.run_scope() as scope, sigterm_raises():
        try:
            before = hypothesis(experiment, config)
            journal["steady_states"]["before"] = before
            if before is not None and not before["steady_state_met"]:
                journal["status"] = "failed"
            else:
                _method(experiment, config, journal, continuous, frequency_s, fail_fast_ratio)
                if any(entry["status"] == "failed" for entry in journal["run"]):
                    journal["status"] = "failed"
                if journal["status"] is None:
                    after = hypothesis(experiment, config)
                    journal["steady_states"]["after"] = after
                    if after is not None and not after["steady_state_met"]:
                        journal["status"], journal["deviated"] = "failed", True
        except (Interrupted, KeyboardInterrupt):
            journal["status"] = "interrupted"
        except Exception:
            # Chaos Toolkit's "aborted": an error outside any activity. Logged with its
            # traceback; the rollbacks still run below.
            log.exception("experiment %r aborted", experiment.get("title"))
            journal["status"] = "aborted"
        finally:
            journal["rollbacks"] = [execute(a, config) for a in experiment.get("rollbacks") or []]
            journal["rollbacks"] += scope.roll_back_all()
    return finish(journal, started)


def hypothesis(experiment: Mapping[str, Any], config: Mapping[str, Any]
               ) -> dict[str, Any] | None:
    """Run the steady-state probes in order, stopping at the first that fails."""
    steady = experiment.get("steady-state-hypothesis")
    if not steady or not steady.get("probes"):
        return None
    probes = []
    for probe in steady["probes"]:
        entry = execute(probe, config)
        entry["tolerance_met"] = entry["status"] == "succeeded" and within_tolerance(
            probe["tolerance"], entry["output"])
        probes.append(entry)
        if not entry["tolerance_met"]:
            break
    return {"steady_state_met": all(p["tolerance_met"] for p in probes), "probes": probes}


def _method(experiment: Mapping[str, Any], config: Mapping[str, Any],
            journal: dict[str, Any], continuous: bool, frequency_s: float,
            fail_fast_ratio: float | None) -> None:
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, name="sidecar-hypothesis", daemon=True,
                               args=(experiment, config, journal, stop, frequency_s,
                                     fail_fast_ratio)) if continuous else None
    if watcher:
        watcher.start()
    try:
        for activity in experiment["method"]:
            if journal["status"] is not None:  # the continuous check failed fast
                break
            journal["run"].append(execute(activity, config))
    finally:
        stop.set()
        if watcher:
            watcher.join()


def _watch(experiment: Mapping[str, Any], config: Mapping[str, Any], journal: dict[str, Any],
           stop: threading.Event, frequency_s: float, fail_fast_ratio: float | None) -> None:
    during = journal["steady_states"]["during"]
    while True:
        state = hypothesis(experiment, config)
        if state is None:
            return
        during.append(state)
        failed = sum(1 for s in during if not s["steady_state_met"])
        if fail_fast_ratio is not None and failed and failed / len(during) >= fail_fast_ratio:
            journal["status"] = "failed"
            return
        if stop.wait(frequency_s):
            return


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGTERM becomes an exception in the main thread, so the rollbacks still run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_interrupted(signum: int, frame: Any) -> None:
        raise Interrupted("SIGTERM received")

    previous = signal.signal(signal.SIGTERM, raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
