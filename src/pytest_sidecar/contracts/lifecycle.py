"""The trace lifecycle of CONTRACT §2.2 as data: which states exist, and which orders of
observed states it allows. Specs judge timelines (polls, SSE events) with it."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from ..vocabulary.states import RANK, STATUS_FIELDS, TERMINAL


def order_errors(states: Sequence[str]) -> list[str]:
    """What is wrong with a sequence of observed states: unknown states, a state after
    which it went backwards, or two different terminal states. Repeats are fine (polls)."""
    errors = [f"unknown state {state!r}" for state in dict.fromkeys(states) if state not in RANK]
    known = [state for state in states if state in RANK]
    for before, after in itertools.pairwise(known):
        if RANK[after] < RANK[before] or (
                before in TERMINAL and after in TERMINAL and before != after
                and (before, after) != ("complete", "expired")):
            errors.append(f"{before} -> {after}")
    return errors


def status_errors(status: Mapping[str, object]) -> list[str]:
    """What is wrong with a status object's shape (§2.3)."""
    from .timestamps import timestamp_error

    errors = [f"no {name}" for name in STATUS_FIELDS if name not in status]
    errors += [error for name in ("created_at", "updated_at") if name in status
               and (error := timestamp_error(name, status[name]))]
    progress = status.get("progress")
    if "progress" in status and not (isinstance(progress, int | float) and 0 <= progress <= 100):
        errors.append(f"progress {progress!r} is not within 0-100")
    return errors


def may_follow(before: str, after: str) -> bool:
    """True if a trace seen in `before` may later be seen in `after` (§2.2)."""
    return not order_errors([before, after])
