"""The target's capacity (CONTRACT §5 Capacity), run with `pytest -m capacity` only.

A rate sweep offers streamed chats at --sidecar-rate, twice that, ... up to
--sidecar-sweep-max, each step --sidecar-load-duration long, then bisects the edge twice.
A step holds when --sidecar-attainment of its streams meet every --sidecar-limits limit
and chat success stays within the §5 budget (99.9 %). The peak, DistServe's, is the
highest rate that held; it must reach --sidecar-rate, the rate the SLO verdicts plan
for. The chats ask for no explanation: the explainer's capacity is the KEDA spec's
question (test_capacity_attach_rate.py). Embedded, the sweep has a stack of its own.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pytest_sidecar import Evidence
from pytest_sidecar.config import SidecarConfig
from pytest_sidecar.fixtures.load import LoadRunner
from pytest_sidecar.fixtures.platform import manifests_root
from pytest_sidecar.fixtures.stack import StackFactory
from pytest_sidecar.target import Target
from pytest_sidecar.vocabulary.defaults import MAX_CHAT_ERROR_RATE

pytestmark = [pytest.mark.capacity, pytest.mark.load, pytest.mark.profile("performance")]

BISECTIONS = 2
# every chat streamed, none explained
CHAT_ONLY: dict[str, Any] = {"attach_rate": 0.0, "stream_share": 1.0}


@pytest.mark.clause("§5/capacity")
@pytest.mark.needs("chat_stream")
def test_the_peak_rate_reaches_the_planned_rate(
        load_runner: LoadRunner, sidecar_target: Target, stack_factory: StackFactory,
        sidecar_config: SidecarConfig, pytestconfig: pytest.Config,
        evidence: Evidence) -> None:
    """The highest rate at which the streamed chats meet the limits is at or above
    --sidecar-rate; the steps, the peak and a chart of latency and attainment against
    offered rate are the evidence."""
    from pytest_sidecar.load.sweep import sweep
    from pytest_sidecar.reporting.plot import sweep_svg

    planned = sidecar_config.rate
    own = sidecar_target.origin == "embedded"
    target = stack_factory() if own else sidecar_target
    base = dataclasses.replace(load_runner.profile, **CHAT_ONLY)
    try:
        found = sweep(lambda profile: load_runner.run(
            target, _name=f"sweep-{profile.rate:g}", rate=profile.rate, **CHAT_ONLY).summary,
            base, planned, planned, max(planned, sidecar_config.sweep_max),
            sidecar_config.attainment, MAX_CHAT_ERROR_RATE * 100, BISECTIONS,
            sidecar_config.min_samples)
    finally:
        if own:
            stack_factory.stop(target)
    steps = [{"rate": s.rate, "streams": s.streams, "attainment": s.attainment,
              "error %": s.error_pct, "ttft p95 ms": s.ttft_p95_ms,
              "tpot p95 ms": s.tpot_p95_ms, "e2e p95 ms": s.e2e_p95_ms,
              "held": "yes" if s.held else f"no: {s.why}"} for s in found.steps]
    limits = dict(sidecar_config.limits)
    # A sweep that reached --sidecar-sweep-max with every step held found no edge: its
    # peak is a lower bound of the capacity.
    bound = "lower bound" if found.stopped_because.startswith("reached") else "edge found"
    evidence.record(peak_rate=found.peak_rate, peak=bound, planned_rate=planned,
                    limits_ms=limits,
                    attainment=sidecar_config.attainment, stopped=found.stopped_because,
                    steps=steps, **sizing(found.peak_rate, own, planned, sidecar_config,
                                          pytestconfig))
    evidence.figure("latency and attainment against offered rate", sweep_svg(
        "latency and attainment against offered rate", [s.rate for s in found.steps],
        {"ttft p95": [s.ttft_p95_ms for s in found.steps],
         "e2e p95": [s.e2e_p95_ms for s in found.steps]},
        [s.attainment or 0.0 for s in found.steps], sidecar_config.attainment,
        found.peak_rate))
    within = ", ".join(f"{k} ≤ {v:g} ms" for k, v in limits.items())
    # The sweep starts at the planned rate: a peak exists only if that rate held.
    assert found.peak_rate is not None, (
        f"§5: the planned {planned:g} req/s did not hold {sidecar_config.attainment:.0%} of "
        f"streams within {within} with chat success 99.9 %: {found.stopped_because}")


def sizing(peak: float | None, one_replica: bool, planned: float, config: SidecarConfig,
           pytestconfig: pytest.Config) -> dict[str, Any]:
    """What the chart's gateway replicas hold at this peak, when the swept target is known
    to be one replica (the embedded stack); a deployment's replica count is its own."""
    if not one_replica:
        return {}
    from pytest_sidecar.capacity import gateway_capacity
    from pytest_sidecar.manifests import gateway_replicas

    chart = gateway_replicas(manifests_root(config, pytestconfig) / "helm" / "hypergraph")
    return {"chart_sizing": gateway_capacity(peak, 1, chart["replicas"], planned),
            "chart_source": chart["source"]}
