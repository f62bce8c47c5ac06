"""CORS (CONTRACT §2.11): allow-listed origins only, echoed, never `*`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pytest_sidecar import Evidence, SidecarClient
from pytest_sidecar.target import Target

pytestmark = [pytest.mark.profile("security"), pytest.mark.security,
              pytest.mark.needs("cors", "chat")]

FOREIGN = "https://evil.example"


def allowed_origin(target: Target) -> str:
    assert target.cors_origins, (
        "§2.11: the target declares 'cors' but lists no cors.allowed_origins")
    return target.cors_origins[0]


def foreign_origins(target: Target) -> list[str]:
    """Origins that are not on the list, some built to pass a list matched by prefix,
    suffix or substring instead of exactly."""
    allowed = target.cors_origins[0] if target.cors_origins else "https://app.example"
    scheme, _, host = allowed.partition("://")
    return [FOREIGN, f"{allowed}.evil.example", f"{allowed}evil.example",
            f"{scheme}://evil{host}", f"{scheme}://evil.example.{host}"]


def simple_request(client: Any, origin: str) -> httpx.Response:
    """A request on the chat route (served by every target) that opens nothing: an empty
    body is refused by validation, and CORS headers go on every answer."""
    return client.http.post("/v1/chat/completions", json={}, headers={"origin": origin})


def preflight(target: Target, origin: str) -> httpx.Response:
    return httpx.options(target.url + "/v1/chat/completions", headers={
        "origin": origin, "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type"})


@pytest.mark.clause("§2.11/allowed")
def test_an_allowed_origin_is_echoed_never_star(sidecar_target: Target,
                                                gateway: SidecarClient, evidence: Evidence) -> None:
    origin = allowed_origin(sidecar_target)
    response = simple_request(gateway, origin)
    granted = response.headers.get("access-control-allow-origin")
    assert granted == origin, (
        f"§2.11: an allowed origin got Access-Control-Allow-Origin {granted!r}")
    answer = preflight(sidecar_target, origin)
    assert 200 <= answer.status_code < 300, (
        f"§2.11: the preflight of an allowed origin got {answer.status_code}")
    assert answer.headers.get("access-control-allow-origin") == origin, (
        f"§2.11: the preflight granted {answer.headers.get('access-control-allow-origin')!r}")
    methods = answer.headers.get("access-control-allow-methods", "").upper()
    assert "POST" in methods, f"§2.11: the preflight allows methods {methods!r}, not POST"
    assert "authorization" in answer.headers.get("access-control-allow-headers", "").lower(), (
        "§2.11: the preflight does not allow the Authorization header")
    evidence.record(origin=origin, preflight_status=answer.status_code, methods=methods)


@pytest.mark.clause("§2.11/others")
def test_other_origins_get_no_allow_headers(sidecar_target: Target, gateway: SidecarClient,
                                            evidence: Evidence) -> None:
    origins = foreign_origins(sidecar_target)
    statuses = {}
    for origin in origins:
        simple, answer = simple_request(gateway, origin), preflight(sidecar_target, origin)
        for response in (simple, answer):
            granted = [h for h in response.headers
                       if h.lower().startswith("access-control-allow")]
            assert not granted, f"§2.11: {origin} (not on the list) was granted {granted}"
        if answer.status_code >= 400:
            assert answer.json().get("code"), "§2: a refused preflight is not a JSON error"
        statuses[origin] = (simple.status_code, answer.status_code)
    evidence.record(origins=len(origins), statuses=statuses)
