"""SLO verdicts: never a pass on too few samples, failed traces count against the p95."""

from __future__ import annotations

import math

import pytest

from pytest_sidecar.load.stats import Histograms
from pytest_sidecar.load.verdict import (
    FAIL,
    INSUFFICIENT,
    PASS,
    chat_verdict,
    explanation_verdict,
    most_a_late_client_adds,
    quantile_with_failures,
)

LANE = "explain:sentence"


def followed(completed_s: list[float], failed: int = 0, lost: int = 0) -> Histograms:
    """Explanation samples as the scenario records them: 2xx complete, 5xx failed or
    canceled, error: no terminal state in time."""
    histograms = Histograms()
    for seconds in completed_s:
        histograms.record(LANE, "2xx", seconds)
    for _ in range(failed):
        histograms.record(LANE, "5xx", 0.01)
    for _ in range(lost):
        histograms.record(LANE, "error", 30.0)
    return histograms


def test_no_samples_is_insufficient_data_never_a_pass() -> None:
    verdict = explanation_verdict(Histograms(), "sentence", 2.0, min_samples=1,
                                  trustworthy=True)
    assert verdict.outcome == INSUFFICIENT and verdict.samples == 0
    assert "0 completed traces of 0 followed" in verdict.detail


def test_too_few_completed_traces_is_insufficient_data() -> None:
    verdict = explanation_verdict(followed([0.1] * 19, failed=30), "sentence", 2.0,
                                  min_samples=20, trustworthy=True)
    assert verdict.outcome == INSUFFICIENT and verdict.samples == 19
    assert "19 completed traces of 49 followed" in verdict.detail


def test_the_p95_of_fast_traces_passes_and_a_slow_tail_fails() -> None:
    fast = followed([0.1] * 96 + [3.0] * 4)  # 4 % slow: p95 stays fast
    slow = followed([0.1] * 94 + [3.0] * 6)  # 6 % slow: p95 is slow
    good = explanation_verdict(fast, "sentence", 2.0, 20, trustworthy=True)
    bad = explanation_verdict(slow, "sentence", 2.0, 20, trustworthy=True)
    assert (good.outcome, bad.outcome) == (PASS, FAIL)
    assert good.measured == pytest.approx(0.1, rel=0.01)
    assert bad.measured == pytest.approx(3.0, rel=0.01)
    assert good.samples == bad.samples == 100


def test_failed_traces_rank_as_infinitely_slow() -> None:
    """A target that fails its slow traces must not pass by dropping them."""
    p95, done, total = quantile_with_failures(followed([0.1] * 90, failed=6, lost=4), LANE)
    assert (p95, done, total) == (math.inf, 90, 100)
    verdict = explanation_verdict(followed([0.1] * 90, failed=6, lost=4), "sentence", 2.0,
                                  20, trustworthy=True)
    assert verdict.outcome == FAIL and "over 5 % did not complete" in verdict.detail
    # 3 % failed: the p95 is the completed traces' value of rank ceil(0.95 * 100) = 95.
    p95, _, _ = quantile_with_failures(followed([0.1] * 94 + [1.5] * 3, failed=3), LANE)
    assert p95 == pytest.approx(1.5, rel=0.01)


def test_an_untrustworthy_generator_never_fails_a_target_and_bounds_a_pass() -> None:
    """A late client only overstates latency: over the SLO it cannot tell whose fault
    it is (INSUFFICIENT_DATA); within it the figure is an upper bound and passes."""
    slow = explanation_verdict(followed([5.0] * 100), "sentence", 2.0, 20,
                               trustworthy=False, why_not="scheduler lag p99 9 ms")
    assert slow.outcome == INSUFFICIENT and "scheduler lag p99 9 ms" in slow.detail
    assert slow.measured == pytest.approx(5.0, rel=0.01), "the figure is still shown"
    fast = explanation_verdict(followed([0.5] * 100), "sentence", 2.0, 20,
                               trustworthy=False, why_not="scheduler lag p99 9 ms")
    assert fast.outcome == PASS and "upper bound" in fast.detail
    few = explanation_verdict(followed([0.5] * 5), "sentence", 2.0, 20,
                              trustworthy=False, why_not="lag")
    assert few.outcome == INSUFFICIENT, "no data is never a pass, lag or not"


def test_a_miss_larger_than_the_client_could_add_fails_even_when_it_lagged() -> None:
    """The CI case: SLO 1 ms, p95 1.2 s, lag p99 2.8 ms. Three late wake-ups of at most
    the worst lag cannot make 1.2 s out of 1 ms: the target missed."""
    slack = most_a_late_client_adds(lag_max_ms=9.0)
    assert slack == pytest.approx(0.027)
    missed = explanation_verdict(followed([1.2] * 100), "sentence", 0.001, 20,
                                 trustworthy=False, why_not="lag p99 2.8 ms",
                                 client_slack_s=slack)
    assert missed.outcome == FAIL and "27.0 ms at most" in missed.detail
    # Over the SLO but within what the client could add: still the client's doubt.
    close = explanation_verdict(followed([2.02] * 100), "sentence", 2.0, 20,
                                trustworthy=False, why_not="lag", client_slack_s=slack)
    assert close.outcome == INSUFFICIENT


def test_chat_error_rate_excludes_only_allowed_explain_refusals() -> None:
    mix = {"2xx": 9990, "5xx": 10}
    assert chat_verdict(mix, refused_explain=0, min_samples=20).outcome == PASS  # 0.1 %
    worse = chat_verdict({"2xx": 9989, "5xx": 11}, refused_explain=0, min_samples=20)
    assert worse.outcome == FAIL and worse.samples == 10000
    # 50 refusals of explain requests with Retry-After are not chat failures (§5).
    refused = chat_verdict({"2xx": 1000, "5xx": 50}, refused_explain=50, min_samples=20)
    assert refused.outcome == PASS and refused.samples == 1000
    assert chat_verdict({}, 0, min_samples=1).outcome == INSUFFICIENT
