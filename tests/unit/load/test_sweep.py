"""The sweep's rules, with a fake runner whose attainment falls as the rate rises: the
peak is the highest rate that held, the sweep stops at the first that did not (or at an
error-rate limit), and bisection narrows the edge."""

from __future__ import annotations

from typing import Any

from pytest_sidecar.load.runner import Profile
from pytest_sidecar.load.sweep import judge_step, sweep
from pytest_sidecar.reporting.plot import sweep_svg


def summary(rate: float, errors: int = 0) -> dict[str, Any]:
    good = 100 if rate <= 55 else 50  # holds up to 55 req/s
    return {"lanes": {"chat": {"status": {"2xx": 100 - errors, "5xx": errors}},
                      "ttft": {"ok": {"p50_ms": rate, "p95_ms": 2 * rate}}},
            "llm": {"streams": 100, "good": good, "goodput_rps": good / 10}}


def run_with(errors_at: float | None = None) -> Any:
    offered: list[float] = []

    def run(profile: Profile) -> dict[str, Any]:
        offered.append(profile.rate)
        errors = 20 if errors_at is not None and profile.rate >= errors_at else 0
        return summary(profile.rate, errors)

    return run, offered


def test_the_peak_is_the_last_rate_that_held_then_bisection_narrows_it() -> None:
    run, offered = run_with()
    found = sweep(run, Profile(rate=10, duration_s=1), 10, 20, 200, bisect=3)
    assert offered[:4] == [10, 30, 50, 70] and len(offered) == 7
    assert found.peak_rate == 55.0 and "70 req/s: attainment 50.0% under 90%" in \
        found.stopped_because
    assert [s.rate for s in found.steps] == sorted(s.rate for s in found.steps)


def test_an_error_rate_over_the_limit_stops_the_sweep() -> None:
    run, offered = run_with(errors_at=30)
    found = sweep(run, Profile(rate=10, duration_s=1), 10, 20, 200)
    assert offered == [10, 30] and found.peak_rate == 10
    assert found.steps[-1].why == "error rate 20.0 % over 5 % (0 dropped)"


def test_dropped_requests_count_as_errors_and_a_thin_step_does_not_hold() -> None:
    dropping = {**summary(10), "dropped": 25}  # 100 answered, 25 never sent
    step = judge_step(10, dropping, 0.9, 5.0)
    assert not step.held and step.error_pct == 20.0 and "(25 dropped)" in step.why
    thin = judge_step(10, summary(10), 0.9, 5.0, min_streams=200)
    assert not thin.held and thin.why == "100 streams, fewer than the 200 a step needs"
    late = {**summary(70), "trustworthy": False}  # missed, with a lagging generator
    assert "the miss may be the client's" in judge_step(70, late, 0.9, 5.0).why
    assert judge_step(10, {**summary(10), "trustworthy": False}, 0.9, 5.0).held


def test_no_stream_means_no_verdict_and_the_chart_draws_its_lines() -> None:
    step = judge_step(10, {"lanes": {}, "llm": {}}, 0.9, 5.0)
    assert not step.held and step.why == "no streamed request succeeded"
    svg = sweep_svg("t", [10, 30], {"ttft p95": [20.0, 60.0]}, [1.0, 0.5], 0.9, 10)
    assert svg.count("<polyline") == 2 and "peak 10 req/s" in svg
