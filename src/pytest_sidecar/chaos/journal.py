"""The journal of one experiment run, with the fields of Chaos Toolkit's `journal.json`
(so tools that read those read ours): chaoslib-version, platform, node, experiment,
start, status, deviated, steady_states {before, after, during}, run, rollbacks, end,
duration. Statuses: completed, failed, aborted, interrupted."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Mapping
from typing import Any

from ..atomic import write_atomic
from .activities import iso

STATUSES = ("completed", "failed", "aborted", "interrupted")


def new_journal(experiment: Mapping[str, Any]) -> dict[str, Any]:
    from importlib.metadata import version

    return {"chaoslib-version": f"pytest-sidecar {version('pytest-sidecar')}",
            "platform": platform.platform(), "node": platform.node(),
            "experiment": dict(experiment), "start": iso(time.time()), "status": None,
            "deviated": False, "steady_states": {"before": None, "after": None, "during": []},
            "run": [], "rollbacks": []}


def finish(journal: dict[str, Any], started: float) -> dict[str, Any]:
    if journal["status"] not in STATUSES:
        journal["status"] = "completed"
    journal["end"] = iso(time.time())
    journal["duration"] = round(time.time() - started, 6)
    return journal


def verdict_ok(journal: Mapping[str, Any]) -> bool:
    """Chaos Toolkit's exit rule: completed and not deviated."""
    return journal.get("status") == "completed" and not journal.get("deviated")


def write_journal(path: str, journal: Mapping[str, Any]) -> None:
    write_atomic(path, (json.dumps(journal, indent=2, default=str) + "\n").encode())


def summary(journal: Mapping[str, Any]) -> dict[str, Any]:
    """The journal in a few fields, for a spec's evidence (the whole one is a file)."""
    states = journal.get("steady_states", {})
    return {
        "status": journal.get("status"), "deviated": journal.get("deviated"),
        "before_met": (states.get("before") or {}).get("steady_state_met"),
        "after_met": (states.get("after") or {}).get("steady_state_met"),
        "during": f"{sum(1 for s in states.get('during', []) if s['steady_state_met'])}/"
                  f"{len(states.get('during', []))} met",
        "method": [f"{e['activity']['name']}: {e['status']}" for e in journal.get("run", [])],
        "rollbacks": [f"{e['activity']['name']}: {e['status']}"
                      for e in journal.get("rollbacks", [])],
        "duration_s": journal.get("duration"),
    }
