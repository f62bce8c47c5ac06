"""The scope matrix (CONTRACT §3): every route of the OpenAPI document x every kind of
caller -> the expected status, generated from one table."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from pytest_sidecar import Evidence, GatewayFactory, SidecarConfig, Traces
from pytest_sidecar.client import request_head
from pytest_sidecar.contracts.routes import ROUTE_NEEDS
from pytest_sidecar.outcomes import SkipReason, skip
from pytest_sidecar.target import Target
from pytest_sidecar.tls import tls_context

pytestmark = [pytest.mark.profile("security"), pytest.mark.security]

READ, WRITE = "traces:read", "traces:write"


@dataclass(frozen=True)
class Subject:
    """What the allowed requests act on: a trace of tenant A in whatever state it is
    (access control is judged before the trace's state matters) and its chat."""

    trace_id: str
    completion_id: str
    fresh_trace: Callable[[], str]  # a new, not yet terminal trace of tenant A
    model: str


@dataclass(frozen=True)
class Route:
    scope: str | None  # None: no authentication
    allowed: int  # the status when the caller may use the route
    send: Callable[[httpx.Client, dict[str, str], Subject], httpx.Response]


ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/v1/chat/completions"): Route(
        WRITE, 200,
        lambda http, h, s: http.post("/v1/chat/completions", headers=h, json={
            "model": s.model, "messages": [{"role": "user", "content": "rbac"}]})),
    ("GET", "/v1/models"): Route(READ, 200,
                                 lambda http, h, s: http.get("/v1/models", headers=h)),
    ("GET", "/v1/chat/completions/{completion_id}/explanation"): Route(
        READ, 200,
        lambda http, h, s: http.get(f"/v1/chat/completions/{s.completion_id}/explanation",
                                    headers=h)),
    # A refusal does not depend on the id: §3 refuses before any lookup, so an id nobody
    # made must be refused as surely as a real one.
    ("GET", "/v1/chat/completions/{unknown_completion_id}/explanation"): Route(
        READ, 404,
        lambda http, h, s: http.get(f"/v1/chat/completions/chatcmpl-{uuid.uuid4().hex}"
                                    "/explanation", headers=h)),
    ("GET", "/v1/traces/{trace_id}/status"): Route(
        READ, 200,
        lambda http, h, s: http.get(f"/v1/traces/{s.trace_id}/status", headers=h)),
    ("GET", "/v1/traces/{trace_id}/graph"): Route(
        READ, 200,
        lambda http, h, s: http.get(f"/v1/traces/{s.trace_id}/graph", headers=h)),
    ("GET", "/v1/traces/{trace_id}/stream"): Route(
        READ, 200,
        lambda http, h, s: request_head(http, "GET", f"/v1/traces/{s.trace_id}/stream",
                                        headers=h)),
    ("POST", "/v1/traces/{trace_id}/webhooks"): Route(
        WRITE, 201,
        # A public address that is never called: only the canceled event is asked for.
        lambda http, h, s: http.post(f"/v1/traces/{s.trace_id}/webhooks", headers=h,
                                     json={"url": "https://93.184.216.34/hook",
                                           "events": ["canceled"]})),
    ("DELETE", "/v1/traces/{trace_id}"): Route(
        WRITE, 202,
        lambda http, h, s: http.delete(f"/v1/traces/{s.fresh_trace()}", headers=h)),
    ("GET", "/healthz"): Route(None, 200,
                               lambda http, h, s: http.get("/healthz", headers=h)),
    ("GET", "/readyz"): Route(None, 200,
                              lambda http, h, s: http.get("/readyz", headers=h)),
    ("GET", "/metrics"): Route(None, 200,
                               lambda http, h, s: http.get("/metrics", headers=h)),
}
UNKNOWN_EXPLANATION = ("GET", "/v1/chat/completions/{unknown_completion_id}/explanation")


def route_needs(key: tuple[str, str]) -> tuple[str, ...]:
    """What a route needs of the target (the unknown-id row is the explanation route)."""
    if key == UNKNOWN_EXPLANATION:
        return ROUTE_NEEDS[("GET", "/v1/chat/completions/{completion_id}/explanation")]
    return ROUTE_NEEDS[key]


CALLERS = ("no_token", "malformed", "unknown_token", "tenant_a_read", "tenant_a_write")


def expected(route: Route, caller: str) -> tuple[int, str | None]:
    """The matrix: (status, error code) for a caller on a route."""
    if route.scope is None:
        return route.allowed, None
    if caller in ("no_token", "malformed"):
        return 401, "unauthorized"
    if caller == "unknown_token":
        return 403, "forbidden"
    if caller == "tenant_a_read" and route.scope == WRITE:
        return 403, "missing_scope"
    return route.allowed, None


def credentials(caller: str, target: Target) -> dict[str, str]:
    """The caller's Authorization header; a token the target file does not give is a
    typed skip, never a `Bearer None`."""
    if caller in ("no_token", "malformed", "unknown_token"):
        return {"no_token": {},
                "malformed": {"authorization": "Basic cmJhYzpyYmFj"},
                "unknown_token": {"authorization": f"Bearer never-issued-{uuid.uuid4().hex}"},
                }[caller]
    role = caller.removeprefix("tenant_a_")
    tenant = target.tenants.get("a")
    token = getattr(tenant.tokens, role) if tenant else None
    if not token:
        skip(SkipReason.NOT_DECLARED, f"no {role} token for tenant a",
             f"give tenants.a.tokens.{role} in the target file", "§3")
    return {"authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def subject(gateway_factory: GatewayFactory, traces: Traces, sidecar_target: Target) -> Subject:
    """A trace of tenant A (when the target explains) for the trace routes, not waited
    for: the matrix judges who may call a route, which a queued trace shows as well as a
    complete one, so a stalled explainer cannot hide an access-control defect."""
    model = sidecar_target.model
    if "explain" not in sidecar_target.capabilities:
        return Subject("rbac-probe", "rbac-probe", lambda: "rbac-probe", model)
    owner = gateway_factory("a", "write")
    opened = traces.open(owner, granularity="sentence")

    def fresh_trace() -> str:
        # ~1.2 s of explanation work: still running when the DELETE follows at once.
        return traces.open(owner, granularity="token", max_tokens=60).trace_id

    return Subject(opened.trace_id, str(opened.response.json().get("id")), fresh_trace, model)


# A refusal cell judges a gateway that checks tokens ('auth'); an allowed cell only needs
# the token the target gives, so a gateway whose refusals are broken still gets its
# allowed calls judged.
CELLS = [pytest.param(key, caller, id=f"{key[0]} {key[1]} as {caller}", marks=pytest.mark.needs(
             *(("auth",) if expected(ROUTES[key], caller)[1] else ()), *route_needs(key)))
         for key in ROUTES for caller in CALLERS]


@pytest.mark.clause("§3/unauthorized", "§3/forbidden", "§3/scope")
@pytest.mark.parametrize("key,caller", CELLS)
def test_scope_matrix(key: tuple[str, str], caller: str, sidecar_target: Target,
                      subject: Subject, sidecar_config: SidecarConfig, evidence: Evidence) -> None:
    route = ROUTES[key]
    if key == ("GET", "/metrics") and sidecar_target.metrics_gateway != \
            sidecar_target.url + "/metrics":
        skip(SkipReason.NOT_DECLARED, "the gateway's metrics are not served at its own "
             f"/metrics (declared at {sidecar_target.metrics_gateway})",
             "declare metrics.gateway as <url>/metrics to certify the route", "§2.10")
    status, code = expected(route, caller)
    with httpx.Client(base_url=sidecar_target.url, timeout=sidecar_config.timeout,
                      verify=tls_context()) as http:
        response = route.send(http, credentials(caller, sidecar_target), subject)
    if code is None:
        # Allowed: access control must let it through. What the route then answers (a
        # graph, a 409 for a trace that finished first) is its own clause's matter.
        assert response.status_code not in (401, 403), (
            f"§3: {key[0]} {key[1]} as {caller} was refused {response.status_code}: "
            f"{response.text[:200]}")
        evidence.record(route=f"{key[0]} {key[1]}", caller=caller,
                        status=response.status_code, allowed=True)
        return
    assert response.status_code == status, (
        f"§3: {key[0]} {key[1]} as {caller}: {response.status_code}, expected {status}: "
        f"{response.text[:200]}")
    if code is not None:
        got = response.json().get("code")
        assert got == code, f"§3: {key[0]} {key[1]} as {caller}: code {got!r}, expected {code}"
    if status == 401:
        assert response.headers.get("www-authenticate", "").lower().startswith("bearer"), \
            f"§3: 401 without WWW-Authenticate: Bearer on {key[0]} {key[1]}"
    evidence.record(route=f"{key[0]} {key[1]}", caller=caller, status=response.status_code,
                    code=code)
