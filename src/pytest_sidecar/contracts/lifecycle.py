"""The trace lifecycle of CONTRACT §2.2 as data: which states exist, and which orders of
observed states it allows. Specs judge timelines (polls, SSE events) with it."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

# queued -> running -> (partial) -> complete | failed | canceled; complete -> expired.
RANK = {"queued": 0, "running": 1, "partial": 2, "complete": 3, "failed": 3, "canceled": 3,
        "expired": 4}
TERMINAL = frozenset({"complete", "failed", "canceled", "expired"})


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


def may_follow(before: str, after: str) -> bool:
    """True if a trace seen in `before` may later be seen in `after` (§2.2)."""
    return not order_errors([before, after])
