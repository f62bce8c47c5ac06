"""A dependency down (CONTRACT §10): /readyz names it, chats without explain keep
answering, explain requests are refused 503 explain_unavailable with Retry-After (nothing
is accepted that could not be kept), what was accepted before is not lost, and readiness
comes back without a restart."""

from __future__ import annotations

import pytest

from pytest_sidecar import Evidence, GatewayFactory, Traces
from pytest_sidecar.chaos.checks import code_of, until
from pytest_sidecar.fixtures.chaos import ChaosController

pytestmark = [pytest.mark.chaos, pytest.mark.disruptive, pytest.mark.profile("resilience"),
              pytest.mark.needs("chat", "explain", "health", "chaos_control", "chaos_flags")]

READY_DEADLINE_S = 10.0


@pytest.mark.parametrize("dependency", ["status_store", "explainer"])
@pytest.mark.clause("§10/dependencies")
def test_a_dependency_down_refuses_explain_keeps_chat_and_loses_nothing(
        dependency: str, chaos: ChaosController, gateway_factory: GatewayFactory, traces: Traces,
        evidence: Evidence) -> None:
    client = gateway_factory("a", "write", raw=True)
    accepted = traces.open()
    with chaos.fault("dependency-outage", dependency=dependency):
        ready = client.http.get("/readyz")
        plain = client.chat()
        explain = client.explain()
    assert ready.status_code == 503 and dependency in ready.text, (
        f"§2.10: with the {dependency} down /readyz answers 503 naming it (§10); got "
        f"{ready.status_code} {ready.text[:200]}")
    assert plain.status_code == 200, (
        f"§10: chats without explain keep answering with the {dependency} down; got "
        f"{plain.status_code} {code_of(plain)}")
    assert explain.status_code == 503 and code_of(explain) == "explain_unavailable" and \
        explain.headers.get("retry-after"), (
        f"§10: an explain request with the {dependency} down is refused 503 "
        f"explain_unavailable with Retry-After; got {explain.status_code} {code_of(explain)}")
    back, took = until(lambda: client.http.get("/readyz").status_code == 200,
                       READY_DEADLINE_S, every_s=0.1)
    assert back, f"§10: /readyz not 200 {took:.1f}s after the {dependency} came back"
    done = traces.wait(accepted.trace_id)
    traces.require_complete(accepted.trace_id, done.last or {})
    evidence.record(dependency=dependency, readyz=ready.status_code,
                    chat=plain.status_code, explain=[explain.status_code, code_of(explain)],
                    ready_again_after_s=round(took, 2), accepted_before="complete")
