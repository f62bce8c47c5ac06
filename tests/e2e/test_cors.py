"""CORS (CONTRACT §2.11): allow-listed origins only, echoed, never `*`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pytest_sidecar.target import Target

pytestmark = [pytest.mark.profile("security"), pytest.mark.security,
              pytest.mark.contract("§2.11"), pytest.mark.needs("cors", "chat")]

FOREIGN = "https://evil.example"


def allowed_origin(target: Target) -> str:
    assert target.cors_origins, "the target declares 'cors' but lists no cors.allowed_origins"
    return target.cors_origins[0]


def preflight(target: Target, origin: str) -> httpx.Response:
    return httpx.options(target.url + "/v1/chat/completions", headers={
        "origin": origin, "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type"})


@pytest.mark.clause("§2.11/allowed")
def test_an_allowed_origin_is_echoed_never_star(sidecar_target: Target,
                                                gateway: Any, evidence: Any) -> None:
    origin = allowed_origin(sidecar_target)
    response = gateway.http.get("/v1/traces/cors-check/status", headers={"origin": origin})
    assert response.headers.get("access-control-allow-origin") == origin
    assert "*" not in response.headers.get("access-control-allow-origin", "")
    answer = preflight(sidecar_target, origin)
    assert 200 <= answer.status_code < 300, answer.status_code
    assert answer.headers.get("access-control-allow-origin") == origin
    methods = answer.headers.get("access-control-allow-methods", "").upper()
    assert "POST" in methods
    assert "authorization" in answer.headers.get("access-control-allow-headers", "").lower()
    evidence.record(origin=origin, preflight_status=answer.status_code, methods=methods)


@pytest.mark.clause("§2.11/others")
def test_other_origins_get_no_allow_headers(sidecar_target: Target, gateway: Any,
                                            evidence: Any) -> None:
    simple = gateway.http.get("/v1/traces/cors-check/status", headers={"origin": FOREIGN})
    answer = preflight(sidecar_target, FOREIGN)
    for response in (simple, answer):
        granted = [h for h in response.headers if h.lower().startswith("access-control-allow")]
        assert not granted, f"{FOREIGN} was granted {granted}"
    if answer.status_code >= 400:
        assert answer.json()["code"], "a refused preflight is a JSON error"
    evidence.record(origin=FOREIGN, simple_status=simple.status_code,
                    preflight_status=answer.status_code)
