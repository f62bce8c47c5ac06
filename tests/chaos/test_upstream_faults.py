"""Chaos in the chat lane (docs/contract.md §2.1, §7, §10; a short soak):
upstream errors at P %, the circuit breaker, upstream latency past the timeout, a rate-limit
spike."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from pytest_sidecar import (
    Evidence,
    GatewayFactory,
    MetricsFactory,
    SidecarClient,
    SidecarConfig,
    Target,
    Traces,
)
from pytest_sidecar.chaos.checks import code_of, until, wilson
from pytest_sidecar.client import trace_id_from
from pytest_sidecar.fixtures.chaos import ChaosController
from pytest_sidecar.load.loop import run as run_loop
from pytest_sidecar.load.openmodel import run_open
from pytest_sidecar.load.schedule import Arrivals
from pytest_sidecar.metrics import delta
from pytest_sidecar.outcomes import FailReason, SkipReason, fail, skip

pytestmark = [pytest.mark.chaos, pytest.mark.disruptive, pytest.mark.profile("resilience"),
              pytest.mark.needs("chat", "chaos_control", "chaos_flags")]

PERCENT = 30
SOAK_RATE = 20.0  # chats offered per second, at most (sized down to the write limit)
SOAK_IN_FLIGHT = 16
MIN_TRIALS = 60  # 18 ± 11 failures at 99.9 %: tells 30 % from 0 % and from 100 %
REFUSED_BEFORE_THE_UPSTREAM = ((503, "upstream_unavailable"), (429, "rate_limited"))
Answer = tuple[int, str | None, str | None]
CONTRACT_BREAKER = {"failures": 5, "cooldown_s": 10.0}


def breaker_settings(target: Target) -> dict[str, float]:
    return {**CONTRACT_BREAKER, **target.resilience.get("circuit_breaker", {})}


def wait_until_closed(client: SidecarClient, target: Target) -> float:
    """Chats answer again (an open breaker from an earlier spec has cooled down)."""
    ok, took = until(lambda: client.chat().status_code == 200,
                     breaker_settings(target)["cooldown_s"] * 2 + 5, every_s=0.5)
    assert ok, "§10: chats do not answer 200 even with no fault injected"
    return took


@pytest.mark.clause("§7/chaos-flags", "§2.1/upstream-errors")
def test_upstream_errors_at_p_percent_are_502s_within_a_binomial_interval(
        chaos: ChaosController, gateway_factory: GatewayFactory, sidecar_target: Target,
        sidecar_config: SidecarConfig,
        metrics_factory: MetricsFactory, traces: Traces, evidence: Evidence) -> None:
    """A soak, short by default (--sidecar-soak-duration): chats arrive at a
    fixed rate (open model) while P % of upstream calls fail. As many chats as P % of
    those that reached the upstream (within a 99.9 % Wilson interval) answer 502
    upstream_error, each a JSON error; an explained chat that failed opened no trace;
    the ones that succeeded still get their explanation; the gateway's metrics count
    every 502. A breaker may open on a streak and a rate limiter may refuse: their 503
    upstream_unavailable and 429 answers never reached the upstream, so they are not
    trials; when they leave fewer than MIN_TRIALS, the soak runs again (twice at most).
    The rate is sized to the tenant's declared write limit."""
    client = gateway_factory("a", "write", raw=True)  # 429s are answers, not waits
    wait_until_closed(client, sidecar_target)
    rate = min(SOAK_RATE, sidecar_target.limits_for("a")["write"]["rps"] * 0.8)
    duration = max(sidecar_config.soak_duration, MIN_TRIALS / rate * 1.5)
    explain = "explain" in sidecar_target.capabilities and traces.client_ids
    scrape = metrics_scraper(sidecar_target, metrics_factory)
    before = scrape() if scrape else None
    soak = Soak(client, traces, explain)
    with chaos.fault("upstream-errors", status=500, percent=PERCENT):
        for _ in range(3):
            soak.window(rate, duration)
            if len(soak.trials) >= MIN_TRIALS:
                break
    trials, failed = soak.trials, soak.failed
    odd = sorted({(s, c) for s, c, _ in trials if s not in (200, 502)})
    assert not odd, f"§2.1: under upstream errors a chat answers 200 or 502; also got {odd}"
    codes = sorted({c or "no JSON code" for _, c, _ in failed})
    assert codes == ["upstream_error"], f"§2.1: a 502 is a JSON upstream_error; got {codes}"
    assert len(trials) >= MIN_TRIALS, (
        f"§7: of {soak.offered} chats offered in {soak.windows} soak windows only "
        f"{len(trials)} reached the upstream ({len(soak.fast_failed)} refused 503/429 "
        f"before it, {soak.dropped} dropped at the client's in-flight cap, "
        f"{len(soak.no_answer)} unanswered); {MIN_TRIALS} are needed to judge P %")
    low, high = wilson(len(failed), len(trials))
    assert low <= PERCENT / 100 <= high, (
        f"§7: with upstream-errors at {PERCENT} %, {len(failed)} of {len(trials)} chats "
        f"that reached the upstream failed ({len(failed) / len(trials):.1%}); the 99.9 % "
        f"interval [{low:.1%}, {high:.1%}] leaves out {PERCENT} %")
    answers = {t: client.status(t).status_code for _, _, t in failed if t}
    odd_status = sorted({s for s in answers.values() if s not in (200, 404)})
    if odd_status:
        fail(FailReason.DECLARED_BUT_MISSING, f"declared 'explain'; the status of a trace "
             f"id no trace should have answered {odd_status}, not 404",
             "answer 404 trace_not_found for an unknown trace", "§2.3")
    orphans = [t for t, s in answers.items() if s == 200]
    assert not orphans, f"§2.1: failed explained chats opened traces: {orphans[:3]}"
    explained_ok = [t for s, _, t in trials if t and s == 200][:5]
    for trace_id in explained_ok:
        traces.require_complete(trace_id, traces.wait(trace_id).last or {})
    counted = counted_by_metrics(before, scrape() if scrape else None, soak)
    # What the orphan and explanation checks judged, so "no orphan" is never claimed
    # over zero failed explained chats (a target without client trace ids sends none).
    evidence.record(soak_s=round(duration, 1), rate_per_s=round(rate, 1),
                    windows=soak.windows, offered=soak.offered, dropped=soak.dropped,
                    trials=len(trials), upstream_errors=len(failed),
                    refused_before_the_upstream=dict(Counter(
                        f"{s} {c}" for s, c, _ in soak.fast_failed)),
                    unanswered=len(soak.no_answer),
                    wilson_999=[round(low, 3), round(high, 3)], percent=PERCENT,
                    failed_explained_checked_for_orphans=len(answers),
                    orphan_traces=len(orphans) if answers else "not judged",
                    explained_completed=len(explained_ok), metrics=counted)


class Soak:
    """Open-model chats against the target, sorted by what became of them: trials
    (answered by a call that reached the upstream), refused before the upstream (an open
    breaker's 503, a 429), unanswered (the client timed out or the connection broke)."""

    def __init__(self, client: Any, traces: Traces, explain: bool) -> None:
        self.client, self.traces, self.explain = client, traces, explain
        self.trials: list[Answer] = []
        self.fast_failed: list[Answer] = []
        self.no_answer: list[str] = []
        self.offered = self.dropped = self.windows = 0
        self._sent = itertools.count()

    @property
    def failed(self) -> list[Answer]:
        return [a for a in self.trials if a[0] == 502]

    def one(self, n: int) -> Answer:
        """(status, error code, trace id): the id the client chose for a failed explained
        chat (it must not exist), the one the target names for a successful one."""
        trace_id = self.traces.new_id() if self.explain and n % 4 == 0 else None
        response = self.client.explain(trace_id=trace_id) if trace_id else self.client.chat()
        if trace_id and response.status_code == 200:
            trace_id = trace_id_from(response)[0] or trace_id
        return response.status_code, code_of(response), trace_id

    def window(self, rate: float, duration_s: float) -> None:
        """Offer `rate` chats a second for `duration_s` at fixed times, whatever the
        target answers; at most SOAK_IN_FLIGHT at once (more are dropped and counted)."""
        with ThreadPoolExecutor(max_workers=SOAK_IN_FLIGHT) as pool:

            async def send() -> tuple[str, int | None]:
                loop = asyncio.get_running_loop()
                try:
                    answer = await loop.run_in_executor(pool, self.one, next(self._sent))
                except httpx.HTTPError as exc:
                    self.no_answer.append(type(exc).__name__)
                    return "chat", None
                # An explained chat may also be refused 429/503 by §5's admission
                # control, under any code, before the upstream is called.
                refused = (answer[0], answer[1]) in REFUSED_BEFORE_THE_UPSTREAM or (
                    answer[2] is not None and answer[0] in (429, 503))
                (self.fast_failed if refused else self.trials).append(answer)
                return "chat", answer[0]

            result = run_loop(run_open(Arrivals(rate, duration_s).offsets(), send,
                                       SOAK_IN_FLIGHT))
        self.windows += 1
        self.offered += result.offered
        self.dropped += result.dropped


def metrics_scraper(target: Target, metrics_factory: MetricsFactory) -> Any:
    """A function scraping the gateway's metrics, or None when the target declares none."""
    if "metrics:gateway" not in target.capabilities or not target.metrics_gateway:
        return None
    return metrics_factory("gateway").scrape


def counted_by_metrics(before: Any, after: Any, soak: Soak) -> dict[str, Any] | str:
    """§6/§10: the gateway's counters moved at least as much as the soak saw (the run is
    alone on the target, but counters may also count the checks around it)."""
    if before is None or after is None:
        return "not declared (metrics:gateway)"
    # Every 502 of the run, whatever the path label: a gateway mounted under a prefix
    # labels its route differently, and that is §6's spec's business, not this one's.
    counted = {"http_502": delta(before, after, "http_requests_total", status="502"),
               "seen_502": len(soak.failed)}
    assert counted["http_502"] >= counted["seen_502"], (
        f"§6: http_requests_total{{status=\"502\"}} moved by {counted['http_502']:g}; "
        f"the soak saw {counted['seen_502']} 502 answers")
    fast = sum(1 for s, c, _ in soak.fast_failed if (s, c) == (503, "upstream_unavailable"))
    if fast and after.family_type("upstream_breaker_fastfail_total"):
        counted |= {"fastfail": delta(before, after, "upstream_breaker_fastfail_total"),
                    "seen_503": fast}
        assert counted["fastfail"] >= fast, (
            f"§10: upstream_breaker_fastfail_total moved by {counted['fastfail']:g}; the "
            f"soak saw {fast} 503 upstream_unavailable answers")
    return counted


@pytest.mark.needs("circuit_breaker")
@pytest.mark.clause("§10/breaker")
def test_the_breaker_opens_after_the_threshold_and_closes_after_recovery(
        chaos: ChaosController, gateway_factory: GatewayFactory, sidecar_target: Target,
        metrics_factory: MetricsFactory,
        evidence: Evidence) -> None:
    settings = breaker_settings(sidecar_target)
    failures, cooldown = int(settings["failures"]), float(settings["cooldown_s"])
    client = gateway_factory("a", "write", raw=True)
    # The breaker's metrics (§10) are judged where the gateway's /metrics is declared.
    scrape = metrics_factory("gateway").scrape \
        if "metrics:gateway" in sidecar_target.capabilities else None
    wait_until_closed(client, sidecar_target)
    gauge: dict[str, float] = {}
    if scrape:
        before = scrape()
        gauge["closed"] = before.value("upstream_breaker_state")
    with chaos.fault("upstream-errors", status=500):
        tripping = [client.chat() for _ in range(failures)]
        fast = client.chat()
        if scrape:
            while_open = scrape()
            gauge["open"] = while_open.value("upstream_breaker_state")
            fastfails = delta(before, while_open, "upstream_breaker_fastfail_total")
    statuses = [r.status_code for r in tripping]
    assert statuses == [502] * failures, (
        f"§10: the first {failures} upstream failures reach the upstream (502); got {statuses}")
    assert fast.status_code == 503 and code_of(fast) == "upstream_unavailable", (
        f"§10: after {failures} consecutive upstream failures the breaker opens: 503 "
        f"upstream_unavailable; got {fast.status_code} {code_of(fast)}")
    retry_after = fast.headers.get("retry-after")
    assert retry_after and retry_after.isdigit(), (
        f"§10: an open breaker's 503 carries Retry-After; got {retry_after!r}")
    opened = time.monotonic()
    closed, _ = until(lambda: client.chat().status_code == 200, cooldown + 5, every_s=0.25)
    took = time.monotonic() - opened
    assert closed, f"§10: chats still fail {took:.1f}s after recovery (cooldown {cooldown:g}s)"
    assert client.chat().status_code == 200, "§10: a successful trial closes the breaker"
    if scrape:
        gauge["after"] = scrape().value("upstream_breaker_state")
        assert (gauge["closed"], gauge["open"], gauge["after"]) == (0, 1, 0), (
            f"§10: upstream_breaker_state read {gauge} (closed 0, open 1, closed again 0)")
        assert fastfails >= 1, (
            "§10: upstream_breaker_fastfail_total did not move for a chat the open breaker "
            "refused")
    evidence.record(breaker_state=gauge or "not judged (metrics:gateway not declared)")
    evidence.record(failures=failures, cooldown_s=cooldown, statuses=statuses,
                    open_answer=[fast.status_code, code_of(fast)], retry_after=retry_after,
                    closed_after_s=round(took, 2))


@pytest.mark.clause("§7/chaos-flags", "§2.1/upstream-errors")
def test_upstream_latency_past_the_timeout_is_a_504_and_below_it_shifts_ttft(
        chaos: ChaosController, gateway_factory: GatewayFactory, sidecar_target: Target,
        evidence: Evidence) -> None:
    timeout = sidecar_target.resilience.get("upstream_timeout_s")
    if not isinstance(timeout, int | float):
        skip(SkipReason.NOT_DECLARED, "the target file gives no resilience.upstream_timeout_s",
             "give resilience.upstream_timeout_s (the gateway's upstream timeout) in the "
             "target file", "§2.1")
    client = gateway_factory("a", "write", raw=True)
    wait_until_closed(client, sidecar_target)
    with chaos.fault("upstream-latency", ms=int(timeout * 1000) + 1000):
        started = time.monotonic()
        slow = client.chat()
        waited = time.monotonic() - started
    assert slow.status_code == 504 and code_of(slow) == "upstream_timeout", (
        f"§2.1: an upstream slower than the {timeout:g}s timeout makes the chat 504 "
        f"upstream_timeout; got {slow.status_code} {code_of(slow)}")
    assert timeout * 0.9 <= waited <= timeout + 5, (
        f"§2.1: the 504 came after {waited:.2f}s; the declared timeout is {timeout:g}s")
    shift_ms = 300
    baseline = [_ttft(client) for _ in range(5)]
    with chaos.fault("upstream-latency", ms=shift_ms):
        delayed = [_ttft(client) for _ in range(5)]
    shift = statistics.median(delayed) - statistics.median(baseline)
    assert shift >= shift_ms / 1000 * 0.8, (
        f"§7: {shift_ms} ms of upstream latency moved the time to first token by "
        f"{shift * 1000:.0f} ms only")
    evidence.record(timeout_s=timeout, answered_after_s=round(waited, 2),
                    ttft_baseline_ms=round(statistics.median(baseline) * 1000, 1),
                    ttft_delayed_ms=round(statistics.median(delayed) * 1000, 1),
                    injected_ms=shift_ms)


def _ttft(client: Any) -> float:
    """Seconds from sending a streamed chat to its first chunk (non-streaming targets:
    to the whole answer)."""
    started = time.monotonic()
    with client.http.stream("POST", "/v1/chat/completions", json={
            "model": client.model, "stream": True,
            "messages": [{"role": "user", "content": "hello"}]}) as response:
        for _ in response.iter_bytes():
            return time.monotonic() - started
    return time.monotonic() - started


@pytest.mark.clause("§7/chaos-flags")
def test_a_rate_limit_spike_refuses_explain_when_soft_and_everything_when_hard(
        chaos: ChaosController, gateway_factory: GatewayFactory, evidence: Evidence) -> None:
    client = gateway_factory("a", "write", raw=True)
    with chaos.fault("rate-limit-spike", severity="soft"):
        soft = (client.explain(), client.chat())
    with chaos.fault("rate-limit-spike", severity="hard"):
        hard = client.chat()
    after = client.chat()
    explain, plain = soft
    assert explain.status_code == 429 and code_of(explain) == "rate_limited" and \
        explain.headers.get("retry-after"), (
        f"§7: a soft spike refuses explain requests 429 rate_limited with Retry-After; got "
        f"{explain.status_code} {code_of(explain)}")
    assert plain.status_code == 200, f"§7: a soft spike spares plain chats; got {plain.status_code}"
    assert hard.status_code == 429 and hard.headers.get("retry-after"), (
        f"§7: a hard spike refuses every /v1 request; a chat got {hard.status_code}")
    assert after.status_code == 200, f"§7: after the rollback chats answer; got {after.status_code}"
    evidence.record(soft_explain=explain.status_code, soft_chat=plain.status_code,
                    hard_chat=hard.status_code, after=after.status_code)
