"""Tenant isolation (CONTRACT §3, §7): another tenant's trace looks exactly like one that
does not exist, on every trace route, and a status record's tenant never changes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping

import httpx
import pytest

from pytest_sidecar import Evidence, GatewayFactory, Tenant, Traces
from pytest_sidecar.client import SidecarClient, is_terminal, request_head
from pytest_sidecar.fixtures.files import StatusDocument

pytestmark = [pytest.mark.profile("security"), pytest.mark.security]

PAIRS = 6  # tenant A traces probed, in several states
# A chance for short traces to end, so more states are probed; never a precondition:
# isolation is judged on whatever state the target's traces are in.
SETTLE_S = 5.0

Probe = Callable[[SidecarClient, str], httpx.Response]
TRACE_ROUTES: dict[str, tuple[tuple[str, ...], Probe]] = {
    "GET status": (("explain",), lambda c, t: c.status(t)),
    "GET graph": (("explain",), lambda c, t: c.graph(t)),
    "GET stream": (("trace_stream",),
                   lambda c, t: request_head(c.http, "GET", f"/v1/traces/{t}/stream")),
    "DELETE": (("cancel",), lambda c, t: c.cancel(t)),
    "POST webhooks": (("webhooks",), lambda c, t: c.http.post(
        f"/v1/traces/{t}/webhooks", json={"url": "https://93.184.216.34/hook"})),
}


def shape(response: httpx.Response) -> tuple[int, str | None, list[str]]:
    """What §3 compares: the status, the error code and the body's shape (a live event
    stream, left unread, by its status and type alone)."""
    if "event-stream" in response.headers.get("content-type", ""):
        return response.status_code, None, ["<event stream>"]
    body = response.json() if response.content else {}
    return (response.status_code, body.get("code") if isinstance(body, dict) else None,
            sorted(body) if isinstance(body, dict) else [])



@pytest.fixture(scope="module")
def a_traces(gateway_factory: GatewayFactory, traces: Traces) -> dict[str, str]:
    """Tenant A traces by id -> the state each was in once made: short ones given a
    moment to end, long ones still going, one canceled. Nothing is waited for as a
    precondition: §3 is judged on any state, so a stalled explainer hides nothing."""
    owner = gateway_factory("a", "write")
    made: dict[str, str] = {}
    for index in range(PAIRS):
        long_running = index % 3 == 2
        opened = traces.open(owner, granularity="token" if long_running else "sentence",
                             max_tokens=120 if long_running else None)
        made[opened.trace_id] = "long" if long_running else "short"
    settle = time.monotonic() + SETTLE_S
    for trace_id, kind in made.items():
        if kind == "short":  # best effort: poll_until never fails
            owner.poll_until(trace_id, is_terminal, max(0.0, settle - time.monotonic()))
    if "cancel" in traces.target.capabilities:
        canceled = traces.open(owner, granularity="token", max_tokens=120).trace_id
        if owner.cancel(canceled).status_code == 202:
            made[canceled] = "canceled"
    return {trace_id: str(owner.status(trace_id).json().get("state"))
            for trace_id in made}


ROUTE_CASES = [pytest.param(name, marks=pytest.mark.needs("tenants:2", *needs), id=name)
               for name, (needs, _) in TRACE_ROUTES.items()]


@pytest.mark.clause("§3/isolation")
@pytest.mark.parametrize("route", ROUTE_CASES)
def test_a_foreign_trace_is_indistinguishable_from_a_missing_one(
        route: str, a_traces: dict[str, str], gateway_factory: GatewayFactory,
        evidence: Evidence) -> None:
    probe = TRACE_ROUTES[route][1]
    stranger, owner = gateway_factory("b", "write"), gateway_factory("a", "read")
    states_before = {t: owner.status(t).json().get("state") for t in a_traces}
    seen = set()
    for trace_id in a_traces:
        missing_id = "missing-" + uuid.uuid4().hex[:20]
        foreign = shape(probe(stranger, trace_id))
        missing = shape(probe(stranger, missing_id))
        # The baseline first: how a missing trace answers is §2.3's, before §3 compares.
        assert missing[:2] == (404, "trace_not_found"), (
            f"§2.3: B's {route} on a trace nobody made answered {missing[:2]}, not 404 "
            "trace_not_found")
        assert foreign[:2] == (404, "trace_not_found"), (
            f"§3: B's {route} on A's trace {trace_id} answered {foreign[:2]}, not 404 "
            "trace_not_found")
        assert foreign == missing, (
            f"§3: B's {route} on A's trace differs from a missing one: {foreign} vs {missing}")
        seen.add(str(foreign))
    # B's attempts changed nothing of A's: none was canceled by B's DELETE.
    for trace_id, before in states_before.items():
        after = owner.status(trace_id).json().get("state")
        assert after != "canceled" or before == "canceled", (
            f"§3: B's {route} canceled A's trace {trace_id} ({before} -> canceled)")
    evidence.record(route=route, pairs=len(a_traces), made=sorted(set(a_traces.values())),
                    answer=sorted(seen))


@pytest.mark.clause("§7/tenant-immutable")
@pytest.mark.needs("tenants:2", "status_store")
def test_status_records_keep_their_tenant(status_store: StatusDocument, tenants: Mapping[str,
                                          Tenant],
                                          a_traces: dict[str, str], gateway_factory: GatewayFactory,
                                          traces: Traces, evidence: Evidence) -> None:
    before = status_store.records()
    stranger = gateway_factory("b", "write")
    b_trace = traces.open(stranger).trace_id
    # Let A's traces move on, and B act on them, then read the store again. B's trace is
    # given a moment to be rewritten by the explainer; a queued record (on disk before its
    # 200, §5) is judged all the same.
    for trace_id in a_traces:
        stranger.cancel(trace_id)
    gateway_factory("b", "read").poll_until(b_trace, is_terminal, SETTLE_S)
    after = status_store.records_with([*a_traces, b_trace])
    absent = [t for t in [*a_traces, b_trace] if t not in after]
    assert not absent, f"§7: traces the gateway acknowledged are not in the store: {absent}"
    for trace_id in a_traces:
        assert after[trace_id].get("tenant_id") == tenants["a"].id, (
            f"§7: {trace_id} of tenant A has tenant_id {after[trace_id].get('tenant_id')!r}")
    assert after[b_trace].get("tenant_id") == tenants["b"].id, (
        f"§7: {b_trace} of tenant B has tenant_id {after[b_trace].get('tenant_id')!r}")
    changed = [t for t in before if t in after
               and before[t].get("tenant_id") != after[t].get("tenant_id")]
    assert not changed, f"§7: records changed tenant: {changed[:5]}"
    evidence.record(records_before=len(before), records_after=len(after),
                    a_traces=len(a_traces), b_trace=b_trace, changed=0)


TENANT_HEADERS = ("x-tenant-id", "x-tenant", "x-sidecar-tenant")


@pytest.mark.clause("§3/tenant-from-token")
@pytest.mark.needs("chat", "explain", "tenants:2")
def test_request_headers_cannot_change_the_tenant(gateway_factory: GatewayFactory,
                                                  tenants: Mapping[str, Tenant],
                                                  traces: Traces, evidence: Evidence) -> None:
    """Neither on create nor on a read: a header naming another tenant changes nothing."""
    owner, stranger = gateway_factory("a", "write"), gateway_factory("b", "read")
    claim_b = {header: tenants["b"].id for header in TENANT_HEADERS}
    claim_a = {header: tenants["a"].id for header in TENANT_HEADERS}
    trace_id = traces.open(owner, headers=claim_b).trace_id
    # Had a header moved the trace to B, A's own token would no longer find it.
    mine = owner.status(trace_id)
    assert mine.status_code == 200, (
        f"§3: a header claiming tenant B took the trace from its token's tenant "
        f"({mine.status_code})")
    # B claiming to be A on a read: still B. The claim must change nothing (whether B
    # reads A's traces at all is the isolation spec's matter).
    plain = stranger.status(trace_id)
    claimed = stranger.http.get(f"/v1/traces/{trace_id}/status", headers=claim_a)
    assert claimed.status_code == plain.status_code, (
        f"§3: tenant B's read of A's trace got {plain.status_code}, and "
        f"{claimed.status_code} with headers claiming tenant A (the tenant comes only from "
        "the token)")
    evidence.record(trace_id=trace_id, headers=list(TENANT_HEADERS), owner_status=200,
                    plain_read_status=plain.status_code, claimed_read_status=claimed.status_code)
