"""What the resilience specs compute: a binomial interval, a bounded wait, an error code."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import httpx


def code_of(response: httpx.Response) -> str | None:
    """The JSON error code of an answer (None when the body is not the §2 error shape)."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


def wilson(successes: float, trials: float, z: float = 3.29) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (z 3.29: 99.9 % two-sided): where
    the observed share of `trials` may honestly fall for a true share inside it."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (
        1 + z * z / trials)
    return max(0.0, centre - spread), min(1.0, centre + spread)


def until(check: Callable[[], Any], deadline_s: float, every_s: float = 0.1) -> tuple[Any, float]:
    """Call `check` until it returns something truthy or the deadline passes; returns the
    last result and the seconds it took."""
    started = time.monotonic()
    while True:
        result = check()
        elapsed = time.monotonic() - started
        if result or elapsed > deadline_s:
            return result, elapsed
        time.sleep(every_s)
