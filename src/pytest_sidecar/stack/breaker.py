"""The upstream circuit breaker (CONTRACT §10).

After `failures` consecutive upstream failures (5xx, timeout, connect error) it opens:
chats fail fast with 503 `upstream_unavailable` + Retry-After, without calling the
upstream, for `cooldown_s`. Then one request goes through (half-open): a success closes
it, a failure opens it again for another cooldown.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = 0, 1, 2  # the values of the upstream_breaker_state gauge


class Breaker:
    def __init__(self, failures: int, cooldown_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failures, self.cooldown_s, self.clock = failures, cooldown_s, clock
        self.state = CLOSED
        self.consecutive = 0
        self.opened_at = 0.0
        self.fast_failed = 0
        self._trial_out = False

    def admit(self) -> int | None:
        """None: call the upstream. Else the Retry-After seconds of a fast failure."""
        if self.state == OPEN:
            waited = self.clock() - self.opened_at
            if waited < self.cooldown_s:
                self.fast_failed += 1
                return max(1, math.ceil(self.cooldown_s - waited))
            self.state, self._trial_out = HALF_OPEN, False
        if self.state == HALF_OPEN:
            if self._trial_out:  # one trial at a time
                self.fast_failed += 1
                return 1
            self._trial_out = True
        return None

    def succeeded(self) -> None:
        self.state, self.consecutive, self._trial_out = CLOSED, 0, False

    def failed(self) -> None:
        self.consecutive += 1
        if self.state == HALF_OPEN or self.consecutive >= self.failures:
            self.state, self.opened_at, self._trial_out = OPEN, self.clock(), False

    def released(self) -> None:
        """A trial that ended neither way (the client went away): let another try."""
        self._trial_out = False
