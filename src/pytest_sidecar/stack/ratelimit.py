"""Token-bucket rate limits per (tenant, category) (CONTRACT §3).

Categories: `read` (GET) and `write` (POST, DELETE). Limits come from
RATE_LIMIT_{READ,WRITE}_{RPS,BURST}, with per-tenant overrides (RATE_LIMITS_JSON) so a
test can exercise a tight limit on one tenant without throttling the others.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    rps: float
    burst: float


DEFAULTS = {"read": Limit(50.0, 200.0), "write": Limit(5.0, 20.0)}


class Bucket:
    """A token bucket: starts full, refills at `rps` up to `burst`."""

    def __init__(self, limit: Limit, now: float) -> None:
        self.limit, self.tokens, self.updated = limit, limit.burst, now

    def take(self, now: float) -> float:
        """Take one token: 0.0 if allowed, else seconds until one is back."""
        self.tokens = min(self.limit.burst, self.tokens + (now - self.updated) * self.limit.rps)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        if self.limit.rps <= 0:
            return math.inf
        return (1.0 - self.tokens) / self.limit.rps


class RateLimiter:
    def __init__(self, limits: Mapping[str, Limit],
                 per_tenant: Mapping[str, Mapping[str, Limit]]) -> None:
        self.limits, self.per_tenant = dict(limits), per_tenant
        self._buckets: dict[tuple[str, str], Bucket] = {}

    def limit_for(self, tenant: str, category: str) -> Limit:
        return self.per_tenant.get(tenant, {}).get(category, self.limits[category])

    def check(self, tenant: str, category: str, sized_for: str | None = None) -> int | None:
        """None when allowed; else the integer Retry-After (>= 1) for the 429. A new
        bucket gets the limits of `sized_for` (default: the bucket's own tenant)."""
        now = time.monotonic()
        key = (tenant, category)
        bucket = self._buckets.get(key)
        if bucket is None:
            limit = self.limit_for(sized_for or tenant, category)
            bucket = self._buckets[key] = Bucket(limit, now)
        wait = bucket.take(now)
        if wait == 0.0:
            return None
        return max(1, math.ceil(wait)) if math.isfinite(wait) else 3600
