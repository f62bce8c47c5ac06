"""The stack's named policies: the choices docs/contract.md leaves to an implementation.

Each field is one seam with the reference behaviour as its default. An allowed variation
(stack/variants.py) substitutes fields when the stack is built; the code that uses a
policy calls it and never asks which variation runs.
"""

from __future__ import annotations

import random
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_WEBHOOK_ATTEMPTS = 5  # §2.6: at most 5


def exponential(base_s: float, attempt: int) -> float:
    """The wait before retry `attempt` (1, 2, ...): base, 2 x base, 4 x base, ..."""
    return float(base_s * 2 ** (attempt - 1))


def full_jitter(base_s: float, attempt: int) -> float:
    """Exponential backoff with AWS's "full jitter" kept above half the step: the waits
    grow overall, not each one (§2.6 allows it)."""
    step = exponential(base_s, attempt)
    return float(random.uniform(step / 2, step))


def random_hex_id() -> str:
    return uuid.uuid4().hex


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_like_id() -> str:
    """26 Crockford base-32 characters, 130 random bits (a ULID's shape)."""
    return "".join(secrets.choice(_CROCKFORD) for _ in range(26))


def same_graph(graph: dict[str, Any]) -> dict[str, Any]:
    return graph


def exact_origin(origin: bytes, allowed: frozenset[bytes]) -> bool:
    """§2.11: an origin is allowed when it is on the list, exactly."""
    return origin in allowed


def utc_timestamp(epoch_s: float) -> str:
    """§2: an RFC 3339 time in UTC (the status store's format)."""
    from .store import rfc3339

    return rfc3339(epoch_s)


def registered_events(hook: Mapping[str, Any], state: str) -> bool:
    """§2.6: a hook is told of the events its registration lists."""
    return state in hook["events"]


@dataclass(frozen=True)
class Policies:
    """What an implementation may choose; the defaults are the reference stack's."""

    # §2: how the gateway makes a trace id (random, >= 64 bits, never all zeros).
    new_trace_id: Callable[[], str] = random_hex_id
    # §4: the HIF v1 graph as stored and served (optional fields may be left out).
    shape_graph: Callable[[dict[str, Any]], dict[str, Any]] = same_graph
    # §2.6: attempts in all (2-5) and the wait before each retry.
    webhook_attempts: int = MAX_WEBHOOK_ATTEMPTS
    webhook_wait: Callable[[float, int], float] = exponential
    # §2.2: the explainer stage at which a trace shows the optional `partial` state.
    partial_at_stage: str | None = None
    # §5: the status and code of an explain refusal when the lane is saturated.
    explain_refusal: tuple[int, str] = (503, "explain_overloaded")
    # §7: fields an audit line carries beyond the contract's.
    audit_extra: Mapping[str, Any] = field(default_factory=dict)
    # §6: families the gateway exposes beyond the contract's: name -> (help, labels).
    extra_metrics: Mapping[str, tuple[str, Mapping[str, str]]] = field(default_factory=dict)
    # §2.11: whether an Origin is on the allow-list.
    origin_allowed: Callable[[bytes, frozenset[bytes]], bool] = exact_origin
    # §2.6: the `ts` of a delivery, and which of a hook's trace's states it is told of.
    webhook_timestamp: Callable[[float], str] = utc_timestamp
    webhook_wants: Callable[[Mapping[str, Any], str], bool] = registered_events
    # §2.1 (the fake upstream): output tokens per streamed chunk, and a final usage chunk.
    tokens_per_chunk: int = 1
    usage_chunk: bool = False
