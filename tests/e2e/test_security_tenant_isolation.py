"""Tenant isolation (CONTRACT §3, §7): another tenant's trace looks exactly like one that
does not exist, on every trace route, and a status record's tenant never changes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_sidecar.client import SidecarClient, is_terminal
from pytest_sidecar.target import Target

pytestmark = [pytest.mark.profile("security"), pytest.mark.security,
              pytest.mark.contract("§3")]

PAIRS = 6  # tenant A traces probed, in several states

Probe = Callable[[SidecarClient, str], httpx.Response]
TRACE_ROUTES: dict[str, tuple[tuple[str, ...], Probe]] = {
    "GET status": (("explain",), lambda c, t: c.status(t)),
    "GET graph": (("explain",), lambda c, t: c.graph(t)),
    "GET stream": (("trace_stream",), lambda c, t: c.http.get(f"/v1/traces/{t}/stream")),
    "DELETE": (("cancel",), lambda c, t: c.cancel(t)),
    "POST webhooks": (("webhooks",), lambda c, t: c.http.post(
        f"/v1/traces/{t}/webhooks", json={"url": "https://93.184.216.34/hook"})),
}


def shape(response: httpx.Response, trace_id: str) -> tuple[int, str, list[str], str]:
    """What a caller can observe, with the asked-for id blanked out."""
    body = response.json()
    return (response.status_code, body.get("code"), sorted(body),
            json.dumps(body).replace(trace_id, "<id>"))


@pytest.fixture(scope="module")
def a_traces(gateway_factory: Any, sidecar_config: Any) -> dict[str, str]:
    """Tenant A traces by id -> state when made: complete, canceled and running ones."""
    owner = gateway_factory("a", "write")
    made: dict[str, str] = {}
    for index in range(PAIRS):
        long_running = index % 3 == 2
        response = owner.explain(granularity="token" if long_running else "sentence",
                                 max_tokens=120 if long_running else None)
        made[response.json()["explanation_metadata"]["trace_id"]] = (
            "running" if long_running else "complete")
    for trace_id, state in list(made.items()):
        if state == "complete":
            assert owner.poll_until(trace_id, is_terminal, sidecar_config.trace_deadline).reached
    canceled = next(t for t, s in made.items() if s == "complete")
    made.pop(canceled)
    response = owner.explain(granularity="token", max_tokens=120)
    canceled = response.json()["explanation_metadata"]["trace_id"]
    assert owner.cancel(canceled).status_code == 202
    made[canceled] = "canceled"
    return made


ROUTE_CASES = [pytest.param(name, marks=pytest.mark.needs("auth", "tenants:2", *needs), id=name)
               for name, (needs, _) in TRACE_ROUTES.items()]


@pytest.mark.parametrize("route", ROUTE_CASES)
def test_a_foreign_trace_is_indistinguishable_from_a_missing_one(
        route: str, a_traces: dict[str, str], gateway_factory: Any,
        evidence: Any) -> None:
    probe = TRACE_ROUTES[route][1]
    stranger, owner = gateway_factory("b", "write"), gateway_factory("a", "read")
    states_before = {t: owner.status(t).json()["state"] for t in a_traces}
    seen = set()
    for trace_id in a_traces:
        missing_id = "missing-" + uuid.uuid4().hex[:20]
        foreign = shape(probe(stranger, trace_id), trace_id)
        missing = shape(probe(stranger, missing_id), missing_id)
        assert foreign[0] == 404 and foreign[1] == "trace_not_found", foreign
        assert foreign == missing, f"{route} on A's trace differs from a missing one"
        seen.add(foreign[3])
    # B's attempts changed nothing of A's (a foreign DELETE must not cancel).
    for trace_id, before in states_before.items():
        after = owner.status(trace_id).json()["state"]
        assert after == before or (before, after) == ("running", "complete"), (trace_id,
                                                                                before, after)
    evidence.record(route=route, pairs=len(a_traces), states=sorted(set(a_traces.values())),
                    answer=next(iter(seen)))


@pytest.mark.needs("auth", "tenants:2", "status_store")
@pytest.mark.contract("§7")
def test_status_records_keep_their_tenant(sidecar_target: Target, tenants: Any,
                                          a_traces: dict[str, str], gateway_factory: Any,
                                          sidecar_config: Any, evidence: Any) -> None:
    store = Path(sidecar_target.status_json or "")
    before = json.loads(store.read_text())
    b_chat = gateway_factory("b", "write").explain()
    b_trace = b_chat.json()["explanation_metadata"]["trace_id"]
    # Let A's running traces move on, and B act on them, then read the store again.
    stranger = gateway_factory("b", "write")
    for trace_id in a_traces:
        stranger.cancel(trace_id)
    gateway_factory("b", "read").poll_until(b_trace, is_terminal, sidecar_config.trace_deadline)
    after = json.loads(store.read_text())
    for trace_id in a_traces:
        assert before[trace_id]["tenant_id"] == tenants["a"].id
        assert after[trace_id]["tenant_id"] == tenants["a"].id, f"{trace_id} changed tenant"
    assert after[b_trace]["tenant_id"] == tenants["b"].id
    changed = [t for t in before if t in after and before[t]["tenant_id"] != after[t]["tenant_id"]]
    assert not changed, f"records changed tenant: {changed[:5]}"
    evidence.record(records_before=len(before), records_after=len(after),
                    a_traces=len(a_traces), b_trace=b_trace, changed=0)
