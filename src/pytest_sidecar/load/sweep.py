"""The question capacity planners ask: the highest offered rate at which the gateway still
holds its per-request limits. Raise the open-model rate step by step; at each step a
share of the streamed requests meets every limit (TTFT, TPOT, E2E: the *attainment*);
the peak is the highest rate whose attainment is at least `attainment` (DistServe's
definition, 90 % by default). The sweep stops at the first step that misses it, or whose
error rate passes `max_error_pct`; `bisect` steps then narrow the peak between the last
rate that held and the first that did not."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .runner import Profile

# One step: offer the profile, return its run summary. Synchronous, so `sidecar-load
# sweep` and the capacity spec (a sync pytest test) run the same steps, each on an event
# loop of its own.
Runner = Callable[[Profile], dict[str, Any]]


@dataclass(frozen=True)
class Step:
    """What one rate did."""

    rate: float
    streams: int
    attainment: float | None  # share of streams within every limit
    goodput_rps: float | None
    error_pct: float
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    tpot_p95_ms: float | None
    e2e_p95_ms: float | None
    held: bool
    why: str  # why it did not hold ("" when it held)


@dataclass
class Sweep:
    steps: list[Step] = field(default_factory=list)
    peak_rate: float | None = None
    stopped_because: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"peak_rate": self.peak_rate, "stopped_because": self.stopped_because,
                "steps": [asdict(step) for step in self.steps]}


def judge_step(rate: float, summary: dict[str, Any], attainment: float,
               max_error_pct: float, min_streams: int = 1) -> Step:
    """One step's figures, and whether the rate held. Requests the generator dropped at
    its in-flight cap count as errors (they were offered and not served). A step whose
    generator could not keep up holds when it met the limits anyway (its latencies are
    upper bounds), and stops the sweep when it did not (the miss may be the client's)."""
    lanes = summary.get("lanes", {})

    def p(lane: str, q: str) -> float | None:
        found = lanes.get(lane, {}).get("ok", {}).get(q)
        return float(found) if found is not None else None

    chat = lanes.get("chat", {}).get("status", {})
    dropped = int(summary.get("dropped", 0))
    offered = sum(chat.values()) + dropped
    failed = offered - chat.get("2xx", 0)
    error_pct = round(100 * failed / offered, 2) if offered else 100.0
    llm = summary.get("llm", {})
    streams = int(llm.get("streams", 0))
    share = llm["good"] / streams if streams and "good" in llm else None
    why = ""
    if not streams:
        why = "no streamed request succeeded"
    elif error_pct > max_error_pct:
        why = f"error rate {error_pct} % over {max_error_pct:g} % ({dropped} dropped)"
    elif streams < min_streams:
        why = f"{streams} streams, fewer than the {min_streams} a step needs"
    elif share is None or share < attainment:
        why = f"attainment {share:.1%} under {attainment:.0%}" if share is not None \
            else "no limits to attain"
        if summary.get("trustworthy") is False:
            why += " (the generator could not keep up: the miss may be the client's)"
    return Step(rate, streams, round(share, 4) if share is not None else None,
                llm.get("goodput_rps"), error_pct, p("ttft", "p50_ms"), p("ttft", "p95_ms"),
                p("tpot", "p95_ms"), p("e2e", "p95_ms"), not why, why)


def sweep(run: Runner, base: Profile, start: float, step: float, most: float,
          attainment: float = 0.9, max_error_pct: float = 5.0, bisect: int = 0,
          min_streams: int = 1) -> Sweep:
    """Offer `start`, `start + step`, ... up to `most`, then bisect the edge."""
    found = Sweep()
    rate, failed_at = start, None
    while rate <= most + 1e-9:
        outcome = judge_step(rate, run(replace(base, rate=rate)),
                             attainment, max_error_pct, min_streams)
        found.steps.append(outcome)
        if not outcome.held:
            failed_at, found.stopped_because = rate, f"{rate:g} req/s: {outcome.why}"
            break
        found.peak_rate = rate
        rate = round(rate + step, 6)
    else:
        found.stopped_because = f"reached --max {most:g} req/s with the limits held"
    low, high = found.peak_rate, failed_at
    for _ in range(bisect if low is not None and high is not None else 0):
        assert low is not None and high is not None
        middle = round((low + high) / 2, 3)
        outcome = judge_step(middle, run(replace(base, rate=middle)),
                             attainment, max_error_pct, min_streams)
        found.steps.append(outcome)
        low, high = (middle, high) if outcome.held else (low, middle)
        found.peak_rate = low
    found.steps.sort(key=lambda s: s.rate)
    return found
