"""Metrics (CONTRACT §6): the required families, counters that move by exactly what the
spec did, the exposition rules, and label sets that stay bounded."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_sidecar import Evidence, MetricsFactory, SidecarConfig, Traces
from pytest_sidecar.client import SidecarClient
from pytest_sidecar.fixtures.quiet import QuietTarget
from pytest_sidecar.fixtures.throttle import Throttle
from pytest_sidecar.metrics import decreased, delta, labels_holding, lint
from pytest_sidecar.outcomes import FailReason, fail

pytestmark = [pytest.mark.profile("observability"),
              pytest.mark.needs("chat", "explain", "metrics:gateway", "metrics:explainer")]

GATEWAY = {"http_requests": "counter", "http_request_duration_seconds": "histogram",
           "chat_requests": "counter", "traces_status_get": "counter",
           "traces_graph_get": "counter", "rate_limit_rejections": "counter",
           "rbac_denied": "counter"}
EXPLAINER = {"explainer_jobs": "counter", "explainer_stage_duration_seconds": "histogram",
             "explainer_queue_lag_seconds": "histogram", "hypergraph_backlog_seconds": "gauge",
             "queue_len_global": "gauge", "backpressure_level": "gauge",
             "backpressure_actions": "counter"}


def moved(before: Any, after: Any, name: str, expected: float, exact: bool,
          **labels: str) -> float:
    """Assert a counter moved by `expected` (exactly on a quiet target, at least on a
    shared one, where other specs move it too); returns the delta."""
    change = delta(before, after, name, **labels)
    if exact:
        assert change == expected, f"§6: {name}{labels} moved by {change}, expected {expected}"
    else:
        assert change >= expected, f"§6: {name}{labels} moved by {change}, expected >= {expected}"
    return change


@pytest.mark.clause("§6/families")
def test_required_families_are_exposed_with_their_types(
        traces: Traces, metrics_factory: MetricsFactory, evidence: Evidence) -> None:
    trace_id = traces.finished().trace_id
    found = {}
    for which, families in (("gateway", GATEWAY), ("explainer", EXPLAINER)):
        scrape = metrics_factory(which).scrape()
        for family, kind in families.items():
            assert scrape.family_type(family) == kind, (
                f"§6: {which} {family}: TYPE {scrape.family_type(family)}, expected {kind}")
            if kind == "histogram":
                for suffix in ("_bucket", "_count", "_sum"):
                    assert scrape.select(family + suffix), f"§6: {family}{suffix} has no samples"
        found[which] = len(families)
    evidence.record(families=found, trace_id=trace_id)


@pytest.mark.clause("§6/counters")
@pytest.mark.needs("auth", "tenants:2")
def test_counters_move_by_exactly_what_the_spec_did(
        quiet_target: QuietTarget, metrics_factory: MetricsFactory, sidecar_config: SidecarConfig,
        evidence: Evidence) -> None:
    exact = quiet_target.dedicated
    gateway_metrics = metrics_factory("gateway", quiet_target.target)
    explainer_metrics = metrics_factory("explainer", quiet_target.target)
    target = quiet_target.target
    before, before_jobs = gateway_metrics.scrape(), explainer_metrics.scrape()
    done = {"sentence": 0, "token": 0}
    # Tenant B: it keeps the default rate limits on the dedicated stack.
    with quiet_target.client("b", "write", sidecar_config.timeout) as writer, \
            SidecarClient(target.url, None, sidecar_config.timeout) as anonymous:
        own = Traces(target, sidecar_config, lambda: writer)
        for granularity in ("sentence", "token", "sentence"):
            finished = own.complete(writer, granularity=granularity)
            trace_id = finished.trace_id
            # A job is counted at the granularity it ran at: §5's only downgrade is
            # token -> sentence.
            ran = "sentence" if finished.status.get("granularity_downgraded") else granularity
            done[ran] += 1
        statuses_before = gateway_metrics.scrape()
        writer.status(trace_id)
        writer.graph(trace_id)
        anonymous.status(trace_id)  # 401
    after, after_jobs = gateway_metrics.scrape(), explainer_metrics.scrape()
    changes = {
        "status_get": moved(statuses_before, after, "traces_status_get_total", 1, exact),
        "graph_get": moved(statuses_before, after, "traces_graph_get_total", 1, exact),
        # §6 names the reason label, not its values: the total over reasons.
        "rbac_denied": moved(before, after, "rbac_denied_total", 1, exact),
        "chat_sentence": moved(before, after, "chat_requests_total", 2, exact,
                               granularity="sentence"),
        "chat_token": moved(before, after, "chat_requests_total", 1, exact,
                            granularity="token"),
    }
    for granularity, count in done.items():
        changes[f"jobs_{granularity}"] = moved(before_jobs, after_jobs, "explainer_jobs_total",
                                               count, exact, state="complete",
                                               granularity=granularity)
    evidence.record(exact=exact, deltas=changes)


@pytest.mark.clause("§6/counters")
@pytest.mark.needs("rate_limits")
@pytest.mark.throttle
def test_a_429_moves_the_rejection_counter(quiet_target: QuietTarget, rate_limited: Throttle,
                                           metrics_factory: MetricsFactory,
                                           sidecar_config: SidecarConfig,
                                           evidence: Evidence) -> None:
    # Exact on a stack of this module's own (embedded mode); at least, on a shared one.
    throttle = Throttle(quiet_target.target, "a", quiet_target.limits, True,
                        sidecar_config.timeout) if quiet_target.dedicated else rate_limited
    scraper = metrics_factory("gateway", throttle.target)
    with throttle.client("read") as reader:
        before = scraper.scrape()
        burst = throttle.exhaust("read", lambda: reader.status("obs-missing"))
        after = scraper.scrape()
    if not burst.refused:
        # The precondition is §3's (its own specs judge the limiter): one typed line.
        fail(FailReason.DECLARED_BUT_MISSING, f"declared 'rate_limits'; no 429 after "
             f"{burst.sent} reads, so there is no rejection to count",
             "fix the target's rate limiter", "§3")
    change = moved(before, after, "rate_limit_rejections_total", len(burst.refused),
                   quiet_target.dedicated, category="read")
    evidence.record(exact=quiet_target.dedicated, refused=len(burst.refused),
                    rejections=change)


@pytest.mark.clause("§6/exposition", "§6/bounded-labels")
@pytest.mark.needs("tenants:2")
def test_the_expositions_follow_the_rules_and_stay_bounded(
        quiet_target: QuietTarget, metrics_factory: MetricsFactory, sidecar_config: SidecarConfig,
        evidence: Evidence) -> None:
    # On a quiet (dedicated) target any new series comes from this spec's traces; on a
    # shared one other specs add label sets too, so only the lint's cap is judged there.
    exact = quiet_target.dedicated
    scrapers = {which: metrics_factory(which, quiet_target.target)
                for which in ("gateway", "explainer")}
    gateway = quiet_target.client("b", "write", sidecar_config.timeout, retry=True)
    own = Traces(quiet_target.target, sidecar_config, lambda: gateway)

    sent: list[str] = []  # every id and unmatched path this spec sent: never a label

    def round_of(count: int) -> dict[str, Any]:
        """`count` traces through every trace route, then a scrape of both endpoints."""
        opened = [own.open(gateway).trace_id for _ in range(count)]
        for trace_id in opened:
            own.wait(trace_id, gateway)
            gateway.status(trace_id)
            gateway.graph(trace_id)
            gateway.status("missing-" + trace_id)  # a 404 per trace id
            gateway.http.get(f"/v1/unmatched-{trace_id}")  # a path no route matches
            sent.extend([trace_id, f"missing-{trace_id}", f"unmatched-{trace_id}"])
        return {which: scraper.scrape() for which, scraper in scrapers.items()}

    # The warm-up touches every label set the second round can (a first scrape too: a
    # scrape counts itself only in the next one); a bounded exposition then gains no
    # series at all from 20 more traces with fresh ids.
    for scraper in scrapers.values():
        scraper.scrape()
    warm = round_of(3)
    after = round_of(20)
    # Presence first: rules judged over an empty exposition would hold vacuously.
    empty = [which for which, scrape in after.items()
             if not sum(scrape.series(family) for family in scrape.types)]
    assert not empty, f"§6: no series at all on the {empty} endpoint(s)"
    problems = {which: lint(scrape) for which, scrape in after.items()}
    assert not any(problems.values()), f"§6: {problems}"
    # Judged on every target, shared or not: this spec knows what it sent.
    secrets = [*sent, *quiet_target.target.secrets()]
    carried = {which: labels_holding(scrape, secrets) for which, scrape in after.items()}
    assert not any(carried.values()), (
        f"§6: labels carry ids, paths or tokens this spec sent: {carried}")
    went_down = {which: decreased(warm[which], after[which]) for which in after}
    assert not any(went_down.values()), f"§6: counters decreased: {went_down}"
    gateway.close()
    grown = {f"{which}:{family}": (warm[which].series(family), after[which].series(family))
             for which, scrape in after.items() for family in scrape.types
             if after[which].series(family) > warm[which].series(family)}
    if exact:
        assert not grown, f"§6: series grew with the number of traces: {grown}"
    evidence.record(exact=exact, traces=23, grown=grown, lint_problems=0,
                    series={w: sum(s.series(f) for f in s.types) for w, s in after.items()})
