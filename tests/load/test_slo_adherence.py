"""SLO adherence under the standard mix (CONTRACT §5), run with `pytest -m slo`.

One open-model run per pytest run (shared by the verdicts below, whichever xdist worker
asks first) offers --sidecar-rate chats/s for --sidecar-load-duration seconds, of which
--sidecar-attach-rate ask for an explanation (--sidecar-token-mix of those at token
granularity) and --sidecar-stream-share stream their answer (time to first token is in
the summary table). Each verdict is PASS, FAIL or INSUFFICIENT_DATA (a typed skip; a failure
under --sidecar-strict) and records its sample count.
"""

from __future__ import annotations

import math

import pytest

from pytest_sidecar import Evidence
from pytest_sidecar.config import SidecarConfig
from pytest_sidecar.fixtures.load import SharedLoadRun
from pytest_sidecar.load.runner import LoadRun, Profile
from pytest_sidecar.load.verdict import (
    INSUFFICIENT,
    PASS,
    Verdict,
    chat_verdict,
    explanation_verdict,
    most_a_late_client_adds,
)
from pytest_sidecar.outcomes import SkipReason, skip
from pytest_sidecar.reporting.plot import latency_histogram_svg

pytestmark = [pytest.mark.slo, pytest.mark.load, pytest.mark.profile("performance")]

LANES = ("chat", "ttft", "itl", "tpot", "e2e", "explain:sentence", "explain:token")


@pytest.fixture
def slo_run(shared_load_run: SharedLoadRun) -> LoadRun:
    """The shared standard-mix run of this pytest run (started by the first verdict)."""
    return shared_load_run.run


def summary_table(run: LoadRun) -> list[dict[str, object]]:
    """Per lane: samples, status mix and percentiles in ms (the report's summary table)."""
    rows = []
    for lane in LANES:
        entry = run.summary["lanes"].get(lane)
        if entry is None:
            continue
        ok = entry["ok"]
        status = ", ".join(f"{k}: {v}" for k, v in sorted(entry["status"].items()))
        rows.append({"lane": lane, "status": status, "ok": ok["count"],
                     **{f"{p} ms": ok[f"{p}_ms"] for p in ("p50", "p90", "p95", "p99", "max")}})
    return rows


def record(evidence: Evidence, run: LoadRun, verdict: Verdict, profile: Profile) -> None:
    s = run.summary
    evidence.record(verdict=verdict.as_dict(), offered=s["offered"], sent=s["sent"],
                    dropped=s["dropped"], rate=s["rate"], duration_s=s["duration_s"],
                    attach_rate=s["attach_rate"], token_mix=s["token_mix"],
                    stream_share=s["stream_share"],
                    explanation_timing=s["explanation_timing"],
                    scheduler_lag_p99_ms=s["scheduler_lag_p99_ms"],
                    scheduler_lag_max_ms=s.get("scheduler_lag_max_ms"),
                    client_cpu_share=s["client_cpu_share"], trustworthy=s["trustworthy"],
                    table=summary_table(run))
    llm = s.get("llm")
    if llm:  # the streamed chats' figures (the table's ttft, itl, tpot, e2e lanes)
        evidence.record(streams={k: v for k, v in llm.items() if k != "formulas"},
                        formulas=llm["formulas"])


def judge(verdict: Verdict) -> None:
    if verdict.outcome == INSUFFICIENT:
        action = ("give the load generator a core of its own (pytest -m slo, nothing else "
                  "on the machine) or offer less (--sidecar-rate)"
                  if "could not keep up" in verdict.detail else
                  "run longer or faster (--sidecar-load-duration, --sidecar-rate) or lower "
                  "--sidecar-min-samples")
        skip(SkipReason.INSUFFICIENT_DATA, f"{verdict.name}: {verdict.detail}", action, "§5")
    assert verdict.outcome == PASS, f"{verdict.name}: {verdict.detail}"


def latency_figure(run: LoadRun, profile: Profile) -> str:
    series = {}
    for granularity in ("sentence", "token"):
        histogram = run.histograms.combined(f"explain:{granularity}", ["2xx"])
        series[granularity] = [(item.value_iterated_to / 1000, item.count_at_value_iterated_to)
                               for item in histogram.get_recorded_iterator()]
    thresholds = {f"SLO {g} {s:g} s": s * 1000 for g, s in profile.slo_s.items()}
    return latency_histogram_svg("explanation latency (chat response -> complete)", series,
                                 thresholds)


@pytest.mark.clause("§5/slo")
@pytest.mark.needs("explain")
@pytest.mark.parametrize("granularity", ["sentence", "token"])
def test_explanation_p95_within_slo(granularity: str, slo_run: LoadRun, load_profile: Profile,
                                    sidecar_config: SidecarConfig, evidence: Evidence) -> None:
    """p95 of chat response -> observed `complete` ≤ 2 s (sentence) / 8 s (token)."""
    verdict = explanation_verdict(
        slo_run.histograms, granularity, load_profile.slo_s[granularity],
        sidecar_config.min_samples,
        slo_run.trustworthy, f"scheduler lag p99 {slo_run.summary['scheduler_lag_p99_ms']} "
        f"ms, client CPU {slo_run.summary['client_cpu_share']:.0%}",
        most_a_late_client_adds(slo_run.summary.get("scheduler_lag_max_ms", math.inf)))
    record(evidence, slo_run, verdict, load_profile)
    evidence.figure(f"explanation latency ({granularity} verdict)",
                    latency_figure(slo_run, load_profile))
    judge(verdict)


@pytest.mark.clause("§5/chat-lane")
@pytest.mark.needs("chat")
def test_chat_error_rate_within_budget(slo_run: LoadRun, load_profile: Profile,
                                       sidecar_config: SidecarConfig, evidence: Evidence) -> None:
    """Chat success ≥ 99.9 % while explanations run beside it (explain refusals with
    Retry-After excluded, CONTRACT §5)."""
    s = slo_run.summary
    allowed = sum(s["explain_refused"].values()) - s["explain_refused_without_retry_after"]
    verdict = chat_verdict(s["lanes"]["chat"]["status"], allowed, sidecar_config.min_samples)
    record(evidence, slo_run, verdict, load_profile)
    judge(verdict)
