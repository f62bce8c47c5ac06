"""Hostile and malformed input (CONTRACT §2, §3): exact status, JSON {code, message},
never a 5xx, never a stack trace, path or library version in the body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from pytest_sidecar.client import SidecarClient

pytestmark = [pytest.mark.profile("security"), pytest.mark.security]

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
LEAKS = ("Traceback", 'File "', "site-packages", "starlette", "uvicorn", "Python/", ".py\"")

Send = Callable[[SidecarClient], httpx.Response]
# (id, request, status, code or None where the contract names no code, contract section)
CASES: list[tuple[str, Send, int, str | None, str]] = [
    ("malformed-json", lambda c: c.http.post("/v1/chat/completions", content=b'{"model": '),
     400, "invalid_json", "§2.1"),
    ("not-an-object", lambda c: c.http.post("/v1/chat/completions", json=[1, 2]),
     422, "invalid_request", "§2.1"),
    ("model-not-string", lambda c: c.http.post("/v1/chat/completions",
                                               json={**CHAT, "model": 7}),
     422, "invalid_request", "§2.1"),
    ("messages-empty", lambda c: c.http.post("/v1/chat/completions",
                                             json={**CHAT, "messages": []}),
     422, "invalid_request", "§2.1"),
    ("role-unknown", lambda c: c.http.post("/v1/chat/completions", json={
        **CHAT, "messages": [{"role": "wizard", "content": "x"}]}), 422, "invalid_request",
     "§2.1"),
    ("stream-not-bool", lambda c: c.http.post("/v1/chat/completions",
                                              json={**CHAT, "stream": "yes"}),
     422, "invalid_request", "§2.1"),
    ("oversize-body", lambda c: c.http.post("/v1/chat/completions", json={
        **CHAT, "messages": [{"role": "user", "content": "x" * (1024 * 1024 + 1)}]}),
     413, None, "§2.1"),
    ("bad-explain-mode", lambda c: c.chat(headers={"x-explain-mode": "graph"}),
     400, "invalid_explain_mode", "§2.1"),
    ("bad-granularity", lambda c: c.chat(headers={"x-explain-mode": "hypergraph",
                                                  "x-explain-granularity": "word"}),
     400, "invalid_granularity", "§2.1"),
    ("bad-budget", lambda c: c.chat(headers={"x-explain-mode": "hypergraph",
                                             "x-explain-budget": "soon"}),
     400, "invalid_budget", "§2.1"),
    ("bad-trace-id", lambda c: c.chat(headers={"x-explain-mode": "hypergraph",
                                               "x-trace-id": "../../etc/passwd"}),
     400, "invalid_trace_id", "§2.1"),
    ("unknown-route", lambda c: c.http.get("/v1/nothing-here"), 404, None, "§2"),
    ("unknown-method", lambda c: c.http.put("/v1/chat/completions", json=CHAT),
     405, None, "§2.10"),
    ("token-in-query", lambda c: c.http.get("/v1/traces/x/status",
                                            params={"access_token": "abc"}),
     400, None, "§3"),
]


EXPLAIN_CASES = {"bad-explain-mode", "bad-granularity", "bad-budget", "bad-trace-id"}
PARAMS = [pytest.param(*case, id=case[0],
                       marks=[pytest.mark.needs("explain")] if case[0] in EXPLAIN_CASES else [])
          for case in CASES]


@pytest.mark.clause("§2/error-body", "§2.1/body-validation", "§2.1/explain-mode",
                    "§2.1/granularity", "§2.1/budget", "§2.1/client-trace-id",
                    "§2.10/method-not-allowed", "§3/query-token")
@pytest.mark.needs("chat", "auth")
@pytest.mark.parametrize("name,send,status,code,section", PARAMS)
def test_bad_input_gets_an_exact_json_error(name: str, send: Send, status: int,
                                            code: str | None, section: str,
                                            gateway: SidecarClient, evidence: Any) -> None:
    response = send(gateway)
    assert response.status_code == status, (
        f"{section}: {name}: expected {status}, got {response.status_code}: "
        f"{response.text[:200]}")
    assert response.headers.get("content-type", "").startswith("application/json"), (
        f"§2: {name}: the error is {response.headers.get('content-type')!r}, not JSON")
    body = response.json()
    assert isinstance(body.get("code"), str) and isinstance(body.get("message"), str), (
        f"§2: {name}: the error body is not {{code, message}}: {body}")
    assert set(body) <= {"code", "message", "details"}, f"§2: {name}: extra fields {body}"
    if code is not None:
        assert body["code"] == code, f"{section}: {name}: code {body['code']!r}, not {code}"
    leaked = [marker for marker in LEAKS if marker in response.text]
    assert not leaked, f"§2: {name}: the error body leaks {leaked}"
    if status == 405:
        assert response.headers.get("allow"), f"{section}: {name}: 405 without Allow"
    evidence.record(case=name, status=response.status_code, code=body["code"],
                    contract=section)


@pytest.mark.clause("§3/unauthorized")
@pytest.mark.needs("chat", "auth")
@pytest.mark.contract("§3")
@pytest.mark.parametrize("authorization", [None, "Basic dXNlcjpwYXNz", "Bearer", "Token abc123"])
def test_missing_or_malformed_credentials_are_401_with_a_challenge(
        authorization: str | None, sidecar_target: Any, evidence: Any) -> None:
    headers = {"authorization": authorization} if authorization is not None else {}
    response = httpx.post(sidecar_target.url + "/v1/chat/completions", json=CHAT,
                          headers=headers)
    assert response.status_code == 401 and response.json()["code"] == "unauthorized"
    assert response.headers.get("www-authenticate", "").lower().startswith("bearer")
    evidence.record(authorization=authorization and authorization.split()[0],
                    status=401, challenge=response.headers["www-authenticate"])
