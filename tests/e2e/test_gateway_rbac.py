"""The scope matrix (CONTRACT §3): every route of the OpenAPI document x every kind of
caller -> the expected status, generated from one table."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from pytest_sidecar.contracts.routes import ROUTE_NEEDS
from pytest_sidecar.fixtures.traces import Traces
from pytest_sidecar.outcomes import SkipReason, skip
from pytest_sidecar.target import Target
from pytest_sidecar.tls import tls_context

pytestmark = [pytest.mark.profile("security"), pytest.mark.security,
              pytest.mark.contract("§3")]

READ, WRITE = "traces:read", "traces:write"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "rbac"}]}


@dataclass(frozen=True)
class Subject:
    """What the allowed requests act on: a complete trace of tenant A and its chat."""

    trace_id: str
    completion_id: str
    fresh_trace: Callable[[], str]  # a new, still running trace of tenant A


@dataclass(frozen=True)
class Route:
    scope: str | None  # None: no authentication
    allowed: int  # the status when the caller may use the route
    send: Callable[[httpx.Client, dict[str, str], Subject], httpx.Response]


ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/v1/chat/completions"): Route(
        WRITE, 200,
        lambda http, h, s: http.post("/v1/chat/completions", json=CHAT, headers=h)),
    ("GET", "/v1/chat/completions/{completion_id}/explanation"): Route(
        READ, 200,
        lambda http, h, s: http.get(f"/v1/chat/completions/{s.completion_id}/explanation",
                                    headers=h)),
    ("GET", "/v1/traces/{trace_id}/status"): Route(
        READ, 200,
        lambda http, h, s: http.get(f"/v1/traces/{s.trace_id}/status", headers=h)),
    ("GET", "/v1/traces/{trace_id}/graph"): Route(
        READ, 200,
        lambda http, h, s: http.get(f"/v1/traces/{s.trace_id}/graph", headers=h)),
    ("GET", "/v1/traces/{trace_id}/stream"): Route(
        READ, 200,
        lambda http, h, s: http.get(f"/v1/traces/{s.trace_id}/stream", headers=h)),
    ("POST", "/v1/traces/{trace_id}/webhooks"): Route(
        WRITE, 201,
        # A public address that is never called: the trace is complete, the event canceled.
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
    tokens = target.tenants["a"].tokens
    return {
        "no_token": {},
        "malformed": {"authorization": "Basic cmJhYzpyYmFj"},
        "unknown_token": {"authorization": f"Bearer never-issued-{uuid.uuid4().hex}"},
        "tenant_a_read": {"authorization": f"Bearer {tokens.read}"},
        "tenant_a_write": {"authorization": f"Bearer {tokens.write}"},
    }[caller]


@pytest.fixture(scope="module")
def subject(gateway_factory: Any, traces: Traces, sidecar_target: Target) -> Subject:
    """A complete trace of tenant A (when the target explains) for the trace routes."""
    if "explain" not in sidecar_target.capabilities:
        return Subject("rbac-probe", "rbac-probe", lambda: "rbac-probe")
    owner = gateway_factory("a", "write")
    done = traces.complete(owner, granularity="sentence")

    def fresh_trace() -> str:
        # ~1.2 s of explanation work: still running when the DELETE follows at once.
        return traces.open(owner, granularity="token", max_tokens=60).trace_id

    return Subject(done.trace_id, str(done.response.json().get("id")), fresh_trace)


CELLS = [pytest.param(key, caller, marks=pytest.mark.needs("auth", *ROUTE_NEEDS[key]),
                      id=f"{key[0]} {key[1]} as {caller}")
         for key in ROUTES for caller in CALLERS]


@pytest.mark.clause("§3/unauthorized", "§3/forbidden", "§3/scope")
@pytest.mark.parametrize("key,caller", CELLS)
def test_scope_matrix(key: tuple[str, str], caller: str, sidecar_target: Target,
                      subject: Subject, sidecar_config: Any, evidence: Any) -> None:
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
