"""The completion -> explanation mapping (CONTRACT §2.9): 202 pending, then the HIF v2
envelope; unknown or foreign completions are 404 not_found."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pytest_sidecar import Evidence, GatewayFactory, HifValidator, SidecarConfig, Traces
from pytest_sidecar.client import SidecarClient
from pytest_sidecar.contracts.timestamps import timestamp_error
from pytest_sidecar.outcomes import insufficient_data

pytestmark = [pytest.mark.profile("explain"),
              pytest.mark.needs("chat", "explain", "explanation_v2")]


def explanation(client: SidecarClient, completion_id: str) -> Any:
    return client.http.get(f"/v1/chat/completions/{completion_id}/explanation")


@pytest.mark.clause("§2.9/pending", "§2.9/envelope", "§4/v2-envelope")
def test_pending_then_a_valid_v2_envelope(gateway: SidecarClient, traces: Traces,
                                          sidecar_config: SidecarConfig,
                                          hif_validator: HifValidator,
                                          evidence: Evidence) -> None:
    opened = traces.open(granularity="token", max_tokens=60)
    chat = opened.response
    completion_id = chat.json().get("id")
    assert completion_id, "§2.1: the chat completion has no id"
    first = explanation(gateway, completion_id)
    assert first.status_code in (200, 202), f"§2.9: {first.status_code} {first.text[:200]}"
    pending = 0
    deadline = time.monotonic() + sidecar_config.trace_deadline
    response = first
    while response.status_code == 202 and time.monotonic() < deadline:
        body = response.json()
        assert body.get("id") == completion_id and body.get("status") == "pending", (
            f"§2.9: a 202 answer {body}")
        assert isinstance(body.get("eta_seconds"), int | float) and body["eta_seconds"] >= 0, (
            f"§2.9: eta_seconds {body.get('eta_seconds')!r}")
        pending += 1
        time.sleep(0.05)
        response = explanation(gateway, completion_id)
    if response.status_code == 202:  # pending to the end: did its trace ever end?
        traces.never_ended(opened.trace_id, sidecar_config.trace_deadline, gateway)
    assert response.status_code == 200, (
        f"§2.9: {response.status_code} after {pending} pending answers")
    doc = response.json()
    # §2.9's own fields first, then the hypergraph's schema (§4).
    assert doc.get("id") == completion_id and doc.get("model") == chat.json().get("model"), (
        f"§2.9: envelope id/model {doc.get('id')!r}/{doc.get('model')!r}")
    stamp = timestamp_error("created_at", doc.get("created_at"))
    assert stamp is None, f"§2.9: {stamp}"
    errors = hif_validator.errors_v2(doc)
    assert not errors, f"§4: the v2 envelope: {errors[:5]}"
    node_ids = {n["id"] for n in doc["hypergraph"]["nodes"]}
    for edge in doc["hypergraph"]["hyperedges"]:
        assert set(edge["source_nodes"]) <= node_ids and edge["target_node"] in node_ids, (
            f"§4: hyperedge {edge['id']} names nodes the envelope lacks")
    if not pending:  # the explanation finished before the first read: 202 unobserved
        insufficient_data("pending answers before completion", 0, 1)
    evidence.record(completion_id=completion_id, pending_answers=pending,
                    nodes=len(node_ids), hyperedges=len(doc["hypergraph"]["hyperedges"]))


@pytest.mark.clause("§2.9/not-found")
@pytest.mark.needs("tenants:2")
def test_unknown_and_foreign_completions_are_404(gateway_factory: GatewayFactory, traces: Traces,
                                                 evidence: Evidence) -> None:
    owner, stranger = gateway_factory("a", "write"), gateway_factory("b", "read")
    completion_id = traces.open(owner).response.json().get("id")
    for client, asked in ((owner, "chatcmpl-does-not-exist"), (stranger, completion_id)):
        response = explanation(client, asked)
        # A foreign completion is also §3's tenant isolation; an unknown one only §2.9's.
        sections = "§2.9, §3" if client is stranger else "§2.9"
        assert response.status_code == 404 and response.json().get("code") == "not_found", (
            f"{sections}: the explanation of "
            f"{'a foreign' if client is stranger else 'an unknown'} completion answered "
            f"{response.status_code} {response.text[:120]}")
    evidence.record(completion_id=completion_id, unknown_status=404, foreign_status=404)
