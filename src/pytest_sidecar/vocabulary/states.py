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
# The status object of §2.3: every field present (error, s3_key and the backpressure
# fields may be null).
STATUS_FIELDS = ("trace_id", "state", "progress", "stage", "granularity", "featureset",
                 "created_at", "updated_at", "error", "s3_key", "bp_level", "bp_actions",
                 "granularity_downgraded")
