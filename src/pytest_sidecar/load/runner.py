"""One scenario run, end to end: schedule → open model → summary (→ run directory).

Shared by `sidecar-load run` and the load specs' fixture, so both measure the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..options import default_of
from ..vocabulary.defaults import DEFAULT_MODEL
from .loop import loop_name
from .openmodel import RunResult, run_open
from .rundir import summarize, write_run
from .scenario import Scenario, ScenarioClient
from .schedule import Arrivals
from .stats import Histograms

PROGRESS_EVERY_S = 0.5


class LineStream(Protocol):
    """Where the progress line goes: a terminal, or anything with write and flush."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


@dataclass(frozen=True)
class Profile:
    """The offered load: the open model's schedule plus the scenario's mix. The defaults
    are the plugin's (the OPTIONS table), so `sidecar-load` and `pytest -m slo` offer the
    same load unless told otherwise."""

    rate: float
    duration_s: float
    concurrency: int = default_of("concurrency")
    attach_rate: float = default_of("attach_rate")
    token_mix: float = default_of("token_mix")
    stream_share: float = default_of("stream_share")
    arrivals: str = "poisson"
    ramp_s: float = 0.0
    shard: tuple[int, int] = (0, 1)
    seed: int = 0
    slo_s: dict[str, float] = field(default_factory=lambda: {
        "sentence": default_of("slo_sentence"), "token": default_of("slo_token")})
    explain_deadline_s: float = default_of("trace_deadline")
    model: str = DEFAULT_MODEL  # the model the chats name
    limits: tuple[tuple[str, float], ...] = ()  # per-stream limits for goodput (ms)
    # Streams ask for the usage chunk (the target declares include_usage): output tokens
    # are then counted by the target, not estimated from the content chunks.
    include_usage: bool = False

    def arrivals_schedule(self) -> Arrivals:
        index, total = self.shard
        return Arrivals(rate=self.rate, duration_s=self.duration_s, kind=self.arrivals,
                        ramp_s=self.ramp_s, seed=self.seed, shard=index, shards=total)


@dataclass
class LoadRun:
    """A finished run: the summary (what summary.json holds) and its histograms."""

    summary: dict[str, Any]
    histograms: Histograms
    traces: list[tuple[str, str, str]]  # (tenant id, trace id, requested granularity)

    @property
    def trustworthy(self) -> bool:
        return bool(self.summary.get("trustworthy"))


async def run_scenario(url: str, tenants: tuple[tuple[str, str], ...], profile: Profile,
                       follow_sse: bool = True, out: Path | None = None,
                       progress: LineStream | None = None) -> LoadRun:
    """Offer `profile` to the gateway at `url`; write `out` (a new run directory) if given."""
    arrivals = profile.arrivals_schedule()
    scenario = Scenario(url, tenants, profile.attach_rate, profile.token_mix,
                        profile.stream_share, follow_sse,
                        explain_deadline_s=profile.explain_deadline_s,
                        seed=profile.seed + profile.shard[0], model=profile.model,
                        limits=profile.limits, include_usage=profile.include_usage)
    explanations, result = Histograms(), RunResult()
    async with ScenarioClient(scenario, explanations) as client:
        ticker = (asyncio.create_task(_progress(progress, result, client, profile.duration_s))
                  if progress else None)
        try:
            await run_open(arrivals.offsets(), client.send, profile.concurrency,
                           result=result, lane="chat")
            await client.drain()
        finally:
            if ticker:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
                _line(progress, result, client, profile.duration_s, end="\n")
    result.histograms.merge(explanations)
    index, total = profile.shard
    summary = summarize(result.histograms, {
        **result.summary(), "rate": profile.rate, "shard": f"{index}/{total}",
        "arrivals": profile.arrivals, "concurrency": profile.concurrency,
        "attach_rate": profile.attach_rate, "token_mix": profile.token_mix,
        "stream_share": profile.stream_share,
        "explanation_timing": "sse" if follow_sse else "polling", "loop": loop_name(),
        **({"limits_ms": dict(profile.limits)} if profile.limits else {}),
        **client.tally.as_dict()}, profile.duration_s, profile.slo_s)
    if out is not None:
        write_run(out, summary, result.histograms)
    return LoadRun(summary, result.histograms, list(client.tally.traces))


async def _progress(stream: LineStream, result: RunResult, client: ScenarioClient,
                    duration_s: float) -> None:
    while True:
        await asyncio.sleep(PROGRESS_EVERY_S)
        _line(stream, result, client, duration_s)


def _line(stream: LineStream | None, result: RunResult, client: ScenarioClient, duration_s: float,
          end: str = "") -> None:
    """One progress line, rewritten in place (`\\r`) on a terminal."""
    if stream is None:
        return
    elapsed = min(duration_s, asyncio.get_running_loop().time() - (
        client.started_at or asyncio.get_running_loop().time()))
    explained = sum(client.tally.explained.values())
    done = sum(client.tally.outcomes.values())
    stream.write(f"\r{elapsed:5.1f}/{duration_s:g}s offered {result.offered} "
                 f"sent {result.sent} dropped {result.dropped} in flight {result.in_flight} "
                 f"| traces {explained} done {done} following {client.following} "
                 f"| lag p99 {result.lag_p99_ms:.2f} ms{end}")
    stream.flush()
