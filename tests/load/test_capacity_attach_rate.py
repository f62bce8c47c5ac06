"""Capacity from the attach rate (CONTRACT §5 SLOs, §8 KEDA range).

The standard mix is offered to the target once (`shared_load_run`, the run the SLO verdicts
judge too); attach rate, token mix, chat rate and service time per granularity are
measured from what the target left behind (audit log + status store when it shares them,
the run's summary.json, the gateway's /metrics), an M/M/c model recommends explainer
replicas for the SLO (formula: capacity.py, docs/performance.md), and the chart's KEDA
maxReplicaCount must allow that many.
In embedded mode that run has a stack of its own, so its files hold only that run.
"""

from __future__ import annotations

import pytest

from pytest_sidecar import Evidence, capacity_sources
from pytest_sidecar.capacity import analyze
from pytest_sidecar.config import SidecarConfig
from pytest_sidecar.fixtures.load import SharedLoadRun
from pytest_sidecar.fixtures.platform import manifests_root
from pytest_sidecar.load.verdict import PASS
from pytest_sidecar.manifests import explainer_autoscaling
from pytest_sidecar.outcomes import SkipReason, skip

pytestmark = [pytest.mark.load, pytest.mark.profile("performance"),
              pytest.mark.needs("explain")]


@pytest.mark.clause("§8/keda")
def test_keda_range_allows_the_replicas_the_slo_needs(
        shared_load_run: SharedLoadRun, sidecar_config: SidecarConfig,
        pytestconfig: pytest.Config, evidence: Evidence) -> None:
    """Measured attach rate and service times → replicas (M/M/c, p95 waiting budget) ≤
    the chart's KEDA maxReplicaCount; no data is INSUFFICIENT_DATA, never a pass."""
    run = shared_load_run
    metrics = (run.gateway_metrics, "gateway /metrics") if run.gateway_metrics else None
    measured = capacity_sources.collect(run.audit_log, run.status_json,
                                        run.run_dir, metrics)
    chart = explainer_autoscaling(manifests_root(sidecar_config, pytestconfig) / "helm"
                                  / "hypergraph")
    missing = measured.missing(sidecar_config.min_samples)
    if missing:
        skip(SkipReason.INSUFFICIENT_DATA, f"capacity needs {', '.join(missing)} (with "
             f"{sidecar_config.min_samples} samples each); the target shares "
             f"{'an audit log' if run.audit_log else 'no audit log'} and "
             f"{'a status store' if run.status_json else 'no status store'}",
             "declare files.audit_log and files.status_json in the target file", "§7")
    figures = {name: figure.value for name, figure in measured.figures.items()}
    result = analyze(figures, chart["workers_per_replica"], (chart["min"], chart["max"]),
                     {"sentence": sidecar_config.slo_sentence,
                      "token": sidecar_config.slo_token})
    advice = result["recommendation"] or {}
    evidence.record(verdict=result["verdict"], detail=result["detail"],
                    measured=measured.as_dict(), chart=chart,
                    replicas=advice.get("replicas"), utilization=advice.get("utilization"),
                    p_wait_over_budget=advice.get("p_wait_over_budget"),
                    assumptions=advice.get("assumptions"))
    assert result["verdict"] == PASS, result["detail"]
