"""The open-model runner: requests leave at their intended times whatever the target does.

Latency is measured from the *earlier* of the intended and the actual send time, so a
stalled target shows in the percentiles instead of silently slowing the client down
(coordinated omission). asyncio timers wake up to ~1 ms late, so the runner wakes
`EARLY_S` before each send. A request that would exceed the concurrency cap is not sent
but counted as dropped: an open model never queues in the client. The runner also
reports its own scheduler lag and CPU use, so a client that could not keep up can be
told apart from a slow target.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .stats import Histograms, new_histogram, status_class

# When the request being sent was due (the earlier of its intended and actual send time):
# what a send measures its own latencies from (TTFT, E2E), so they are corrected for
# coordinated omission as the lane's latency is.
MEASURED_FROM: contextvars.ContextVar[float] = contextvars.ContextVar("measured_from")

EARLY_S = 0.0015
LAG_LIMIT_MS = 2.0  # past this p99 scheduler lag, the client's percentiles are not trusted
CPU_LIMIT = 0.9  # fraction of one core

# A request: returns (lane, HTTP status or None when no answer came). A send that raises
# is recorded in the runner's `lane` with status class "error", its exception type counted.
Send = Callable[[], Awaitable[tuple[str, int | None]]]


@dataclass
class RunResult:
    histograms: Histograms = field(default_factory=Histograms)
    lag: Any = field(default_factory=new_histogram)  # scheduler lag, µs (late sends only)
    offered: int = 0
    sent: int = 0
    dropped: int = 0
    completed: int = 0
    in_flight: int = 0
    exceptions: Counter[str] = field(default_factory=Counter)  # type name -> sends raising
    wall_s: float = 0.0
    cpu_s: float = 0.0

    @property
    def lag_p99_ms(self) -> float:
        return self.lag.get_value_at_percentile(99.0) / 1000 if self.lag.get_total_count() else 0

    @property
    def lag_max_ms(self) -> float:
        """The latest any send left: the worst delay the client's event loop showed."""
        return self.lag.get_max_value() / 1000 if self.lag.get_total_count() else 0

    @property
    def cpu_share(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s else 0.0

    @property
    def trustworthy(self) -> bool:
        """False when the generator itself could not keep up (its numbers are not the
        target's latency)."""
        return self.lag_p99_ms <= LAG_LIMIT_MS and self.cpu_share < CPU_LIMIT

    def summary(self) -> dict[str, Any]:
        return {"offered": self.offered, "sent": self.sent, "dropped": self.dropped,
                "completed": self.completed, "exceptions": dict(self.exceptions),
                "wall_s": round(self.wall_s, 3),
                "achieved_rps": round(self.completed / self.wall_s, 1) if self.wall_s else 0,
                "scheduler_lag_p99_ms": round(self.lag_p99_ms, 3),
                "scheduler_lag_max_ms": round(self.lag_max_ms, 3),
                "client_cpu_share": round(self.cpu_share, 3), "trustworthy": self.trustworthy}


async def _attempt(send: Send, lane: str, result: RunResult) -> tuple[str, int | None]:
    """One send; a raising send (no answer: refused, reset, timed out) is an "error" of
    `lane`, so a target that drops connections shows in that lane's error rate."""
    try:
        return await send()
    except Exception as exc:  # any failure of the request is data, not a crash of the run
        result.exceptions[type(exc).__name__] += 1
        return lane, None


async def run_closed(clients: int, duration_s: float, send: Send,
                     lane: str = "request") -> RunResult:
    """The closed model, for comparison: `clients` loops each send, wait, send again.
    Latency is measured from the actual send, so a stall hides in fewer, slower samples
    (coordinated omission): this is what the open model corrects."""
    result = RunResult()
    loop = asyncio.get_running_loop()
    start_wall, start_cpu = loop.time(), time.process_time()
    end = start_wall + duration_s

    async def client() -> None:
        while loop.time() < end:
            sent = loop.time()
            result.offered += 1
            result.sent += 1
            MEASURED_FROM.set(sent)
            answered_lane, status = await _attempt(send, lane, result)
            result.histograms.record(answered_lane, status_class(status), loop.time() - sent)
            result.completed += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    result.wall_s = loop.time() - start_wall
    result.cpu_s = time.process_time() - start_cpu
    return result


async def run_open(offsets: Iterable[float], send: Send, concurrency: int,
                   drain_timeout_s: float = 30.0, result: RunResult | None = None,
                   lane: str = "request") -> RunResult:
    """Send at each intended offset (seconds from now); returns what was measured.

    Pass `result` to watch the counters while the run goes on (a progress line); `lane`
    names the lane a send that raises is recorded in."""
    result = RunResult() if result is None else result
    in_flight = set[asyncio.Task[None]]()
    loop = asyncio.get_running_loop()
    start_wall, start_cpu = loop.time(), time.process_time()

    async def one(intended: float, actual: float) -> None:
        MEASURED_FROM.set(min(intended, actual))  # this task's own context
        answered_lane, status = await _attempt(send, lane, result)
        finished = loop.time()
        result.histograms.record(answered_lane, status_class(status),
                                 finished - min(intended, actual))
        result.completed += 1
        result.in_flight -= 1

    for offset in offsets:
        intended = start_wall + offset
        delay = intended - loop.time() - EARLY_S
        if delay > 0:
            await asyncio.sleep(delay)
        actual = loop.time()
        result.offered += 1
        if actual > intended:
            result.lag.record_value(max(1, round((actual - intended) * 1e6)))
        if len(in_flight) >= concurrency:
            result.dropped += 1
            continue
        result.sent += 1
        result.in_flight += 1
        task = asyncio.create_task(one(intended, actual))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        await asyncio.wait(set(in_flight), timeout=drain_timeout_s)
    result.wall_s = loop.time() - start_wall
    result.cpu_s = time.process_time() - start_cpu
    return result
