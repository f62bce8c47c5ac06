"""Idempotency keys (CONTRACT §2.8): replay, reuse refusal, tenant independence."""

from __future__ import annotations

import uuid

import pytest

from pytest_sidecar import Evidence, GatewayFactory
from pytest_sidecar.client import SidecarClient

pytestmark = [pytest.mark.profile("security"), pytest.mark.security]

MESSAGES = [{"role": "user", "content": "Idempotent question, please."}]


def key() -> str:
    return "idem-" + uuid.uuid4().hex


@pytest.mark.clause("§2.8/replay", "§2/request-id")
@pytest.mark.needs("chat", "explain", "idempotency", "client_trace_id")
def test_same_key_and_request_replays_the_first_response_and_opens_no_trace(
        gateway: SidecarClient, evidence: Evidence) -> None:
    idem, trace_id = key(), "idem-" + uuid.uuid4().hex
    headers = {"x-idempotency-key": idem}
    first = gateway.explain(MESSAGES, trace_id=trace_id, headers=headers)
    assert first.status_code == 200, f"§2.8: the first keyed chat got {first.status_code}"
    assert first.headers.get("x-idempotent-replay") is None, (
        "§2.8: the first use of a key is marked as a replay")
    # The same client trace id again would be 409 trace_exists if a trace were opened.
    second = gateway.explain(MESSAGES, trace_id=trace_id, headers=headers)
    assert second.status_code == 200, (
        f"§2.8: the same key and body again got {second.status_code}: {second.text[:200]}")
    assert second.headers.get("x-idempotent-replay") == "true", (
        "§2.8: the replay has no x-idempotent-replay: true")
    assert second.json() == first.json(), "§2.8: the replay is not the first response"
    assert second.headers.get("x-trace-id") == first.headers.get("x-trace-id"), (
        "§2.8: the replay names another trace than the first response")
    assert second.headers.get("x-request-id") and second.headers.get("x-request-id") != \
        first.headers.get("x-request-id"), (
        "§2: the replay carries the first response's x-request-id, not a fresh one")
    evidence.record(key=idem, trace_id=trace_id, completion_id=first.json()["id"],
                    replay_header=second.headers["x-idempotent-replay"])


@pytest.mark.clause("§2.8/reuse")
@pytest.mark.needs("chat", "idempotency")
def test_same_key_with_another_body_is_422(gateway: SidecarClient, evidence: Evidence) -> None:
    idem = key()
    first = gateway.chat(MESSAGES, headers={"x-idempotency-key": idem})
    assert first.status_code == 200, f"§2.8: a keyed chat got {first.status_code}"
    other = gateway.chat([{"role": "user", "content": "A different question."}],
                         headers={"x-idempotency-key": idem})
    assert other.status_code == 422 and other.json().get("code") == "idempotency_key_reused", (
        f"§2.8: the same key with another body got {other.status_code} {other.text[:120]}")
    evidence.record(key=idem, reuse_status=422)


@pytest.mark.clause("§2.8/tenant")
@pytest.mark.needs("chat", "idempotency", "tenants:2")
def test_another_tenants_identical_key_is_independent(gateway_factory: GatewayFactory,
                                                      evidence: Evidence) -> None:
    idem = key()
    a = gateway_factory("a", "write").chat(MESSAGES, headers={"x-idempotency-key": idem})
    b = gateway_factory("b", "write").chat(MESSAGES, headers={"x-idempotency-key": idem})
    assert a.status_code == b.status_code == 200, (
        f"§2.8: the two tenants' keyed chats got {a.status_code} and {b.status_code}")
    assert b.headers.get("x-idempotent-replay") is None, "§2.8: tenant B got tenant A's response"
    assert b.json()["id"] != a.json()["id"], "§2.8: tenant B got tenant A's completion"
    evidence.record(key=idem, completion_a=a.json()["id"], completion_b=b.json()["id"])


@pytest.mark.clause("§2.8/key-length")
@pytest.mark.needs("chat", "idempotency")
def test_an_overlong_key_is_400(gateway: SidecarClient, evidence: Evidence) -> None:
    response = gateway.chat(MESSAGES, headers={"x-idempotency-key": "k" * 129})
    # §2.8 fixes the status of an overlong key, not its code (the body has §2's shape).
    assert response.status_code == 400, (
        f"§2.8: a 129-character idempotency key got {response.status_code}, not 400")
    evidence.record(key_length=129, status=400, code=response.json().get("code"))
