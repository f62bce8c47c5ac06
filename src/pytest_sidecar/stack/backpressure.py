"""Backpressure (CONTRACT §5): levels from backlog seconds, and the degradation ladder.

Per granularity, backlog seconds (queued work ÷ workers) set the level: soft above 1.5 s
(sentence) / 3.0 s (token), hard above 1.5× that. A job accepted at a level gets the
ladder's actions up to that level, each making the explanation cheaper; past 1.5× hard
the gateway refuses new explain requests (503 + Retry-After) instead of accepting work it
would drop: the chat lane keeps answering.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SOFT_S = {"sentence": 1.5, "token": 3.0}
HARD_FACTOR = DROP_FACTOR = 1.5
NORMAL, SOFT, HARD = 0, 1, 2
# Actions in ladder order, with the share of the work each leaves (token->sentence changes
# the granularity instead). "drop" is the gateway's refusal past 1.5x hard.
LADDER = ("token->sentence", "reduce-samples", "reduce-topk", "reduce-layers",
          "saliency-fallback", "drop")
SOFT_ACTIONS = ("token->sentence", "reduce-samples")
HARD_ACTIONS = (*SOFT_ACTIONS, "reduce-topk", "reduce-layers", "saliency-fallback")
WORK_LEFT = {"reduce-samples": 0.8, "reduce-topk": 0.85, "reduce-layers": 0.7,
             "saliency-fallback": 0.5}


def level(granularity: str, backlog_s: float) -> int:
    soft = SOFT_S[granularity]
    if backlog_s > soft * HARD_FACTOR:
        return HARD
    return SOFT if backlog_s > soft else NORMAL


def overloaded(granularity: str, backlog_s: float) -> int | None:
    """Seconds to Retry-After when new explain work must be refused, else None."""
    limit = SOFT_S[granularity] * HARD_FACTOR * DROP_FACTOR
    if backlog_s <= limit:
        return None
    return max(1, math.ceil(backlog_s - SOFT_S[granularity]))


@dataclass(frozen=True)
class Plan:
    """What a newly accepted job gets: its granularity, level, actions, work factor."""

    granularity: str
    level: int
    actions: tuple[str, ...]
    work_factor: float

    @property
    def downgraded(self) -> bool:
        return "token->sentence" in self.actions


def plan(requested: str, backlog: dict[str, float]) -> Plan:
    """The ladder for a job asking for `requested` granularity under `backlog`."""
    at = level(requested, backlog[requested])
    actions: tuple[str, ...] = () if at == NORMAL else (
        SOFT_ACTIONS if at == SOFT else HARD_ACTIONS)
    if requested != "token":
        actions = tuple(a for a in actions if a != "token->sentence")
    granularity = "sentence" if "token->sentence" in actions else requested
    factor = 1.0
    for action in actions:
        factor *= WORK_LEFT.get(action, 1.0)
    return Plan(granularity, at, actions, factor)
