"""Arrival schedules: the intended send times of an open-model run.

A run offers `rate` requests per second for `duration_s`, at constant spacing or as a
Poisson process, optionally ramping linearly from 0 to `rate` over `ramp_s`. Shard i of n
offers rate/n: constant shards are phase-shifted so that together they are exactly the
whole schedule; Poisson shards are independent (a sum of Poisson processes is Poisson).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Arrivals:
    rate: float  # requests per second offered by the whole run (all shards)
    duration_s: float
    kind: str = "constant"  # or "poisson"
    ramp_s: float = 0.0
    seed: int = 0
    shard: int = 0
    shards: int = 1

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.duration_s <= 0:
            raise ValueError("rate and duration must be > 0")
        if self.kind not in ("constant", "poisson"):
            raise ValueError(f"kind {self.kind!r}: valid: constant, poisson")
        if not 0 <= self.shard < self.shards:
            raise ValueError(f"shard {self.shard}/{self.shards}: valid: 0 <= i < n")
        if self.ramp_s < 0:
            raise ValueError("ramp must be >= 0")

    def expected_count(self) -> float:
        """How many arrivals this shard should offer (the integral of its rate)."""
        return self._cumulative(self.duration_s) * self.rate / self.shards

    def _cumulative(self, t: float) -> float:
        """Arrivals per unit rate up to t: the integral of the ramp shape."""
        ramp = min(self.ramp_s, self.duration_s)
        if t <= ramp:
            return t * t / (2 * ramp) if ramp else t
        return ramp / 2 + (t - ramp)

    def _inverse(self, units: float) -> float:
        """The time at which `units` arrivals per unit rate have been offered."""
        ramp = min(self.ramp_s, self.duration_s)
        if ramp and units <= ramp / 2:
            return math.sqrt(2 * ramp * units)
        return units - ramp / 2 + ramp if ramp else units

    def offsets(self) -> Iterator[float]:
        """Intended send times of this shard, in seconds from the start, ascending."""
        rate = self.rate / self.shards
        if self.kind == "constant":
            # The whole run's k-th arrival is at k/rate; shard i takes every n-th, from i.
            k = self.shard
            while (t := self._inverse(k / self.rate)) < self.duration_s:
                yield t
                k += self.shards
            return
        rng = random.Random(self.seed * 1_000_003 + self.shard)
        units = 0.0
        while True:
            units += rng.expovariate(rate)
            t = self._inverse(units)
            if t >= self.duration_s:
                return
            yield t
