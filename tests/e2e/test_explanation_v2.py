"""The completion -> explanation mapping (CONTRACT §2.9): 202 pending, then the HIF v2
envelope; unknown or foreign completions are 404 not_found."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pytest_sidecar.client import SidecarClient

pytestmark = [pytest.mark.profile("explain"), pytest.mark.contract("§2.9", "§4"),
              pytest.mark.needs("chat", "explain", "explanation_v2")]


def explanation(client: SidecarClient, completion_id: str) -> Any:
    return client.http.get(f"/v1/chat/completions/{completion_id}/explanation")


@pytest.mark.clause("§2.9/pending", "§2.9/envelope", "§4/v2-envelope")
def test_pending_then_a_valid_v2_envelope(gateway: SidecarClient, sidecar_config: Any,
                                          hif_validator: Any, evidence: Any) -> None:
    chat = gateway.explain(granularity="token", max_tokens=60)
    completion_id = chat.json()["id"]
    first = explanation(gateway, completion_id)
    assert first.status_code in (200, 202), first.text[:200]
    pending = 0
    deadline = time.monotonic() + sidecar_config.trace_deadline
    response = first
    while response.status_code == 202 and time.monotonic() < deadline:
        body = response.json()
        assert body["id"] == completion_id and body["status"] == "pending"
        assert isinstance(body["eta_seconds"], int | float) and body["eta_seconds"] >= 0
        pending += 1
        time.sleep(0.05)
        response = explanation(gateway, completion_id)
    assert response.status_code == 200, f"{response.status_code} after {pending} pending"
    assert pending >= 1, "never saw the explanation pending (a 60-token explanation)"
    doc = response.json()
    assert not hif_validator.errors_v2(doc)
    assert doc["id"] == completion_id and doc["model"] == chat.json()["model"]
    node_ids = {n["id"] for n in doc["hypergraph"]["nodes"]}
    for edge in doc["hypergraph"]["hyperedges"]:
        assert set(edge["source_nodes"]) <= node_ids and edge["target_node"] in node_ids
    outputs = [n for n in doc["hypergraph"]["nodes"] if n["type"] == "OUTPUT"]
    assert len(outputs) == chat.json()["usage"]["completion_tokens"]
    evidence.record(completion_id=completion_id, pending_answers=pending,
                    nodes=len(node_ids), hyperedges=len(doc["hypergraph"]["hyperedges"]))


@pytest.mark.clause("§2.9/not-found")
@pytest.mark.needs("tenants:2")
def test_unknown_and_foreign_completions_are_404(gateway_factory: Any,
                                                 evidence: Any) -> None:
    owner, stranger = gateway_factory("a", "write"), gateway_factory("b", "read")
    completion_id = owner.explain().json()["id"]
    for client, asked in ((owner, "chatcmpl-does-not-exist"), (stranger, completion_id)):
        response = explanation(client, asked)
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    evidence.record(completion_id=completion_id, unknown_status=404, foreign_status=404)
