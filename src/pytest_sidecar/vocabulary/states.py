"""The trace lifecycle's words (CONTRACT §2.2)."""

from __future__ import annotations

# queued -> running -> (partial) -> complete | failed | canceled; complete -> expired.
RANK = {"queued": 0, "running": 1, "partial": 2, "complete": 3, "failed": 3, "canceled": 3,
        "expired": 4}
STATES = tuple(RANK)
TERMINAL = frozenset({"complete", "failed", "canceled", "expired"})
ACTIVE = frozenset({"queued", "running", "partial"})
# The terminal transitions a webhook can subscribe to (CONTRACT §2.6).
WEBHOOK_EVENTS = ("complete", "failed", "canceled")
GRANULARITIES = ("sentence", "token")
