"""Hostile and malformed input (CONTRACT §2, §3): exact status, JSON {code, message},
never a 5xx, never a stack trace, path or library version in the body."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from pytest_sidecar import Evidence, Target
from pytest_sidecar.client import SidecarClient

pytestmark = [pytest.mark.profile("security"), pytest.mark.security]



def chat(client: SidecarClient, **changes: Any) -> dict[str, Any]:
    """A valid chat body naming the target's model, with `changes` applied."""
    return {"model": client.model, "messages": [{"role": "user", "content": "hi"}], **changes}

# What an error body must never hold (§2): a stack trace, a source location (a file path,
# `x.py:12`, `line 12, in f`), an exception's repr, or a library's name and version.
LEAKS = re.compile(r"Traceback|File \"|site-packages|[\w/.-]+\.py\b|\bline \d+, in \w|"
                   r"\b\w+(?:Error|Exception)\(|<class '|\b(?:starlette|uvicorn|fastapi|"
                   r"werkzeug|Python)/\d")

Send = Callable[[SidecarClient], httpx.Response]
# (id, request, status, code or None where the contract names no code, contract section)
CASES: list[tuple[str, Send, int, str | None, str]] = [
    ("malformed-json", lambda c: c.http.post("/v1/chat/completions", content=b'{"model": '),
     400, "invalid_json", "§2.1"),
    ("not-an-object", lambda c: c.http.post("/v1/chat/completions", json=[1, 2]),
     422, "invalid_request", "§2.1"),
    ("model-not-string", lambda c: c.http.post("/v1/chat/completions",
                                               json=chat(c, model=7)),
     422, "invalid_request", "§2.1"),
    ("messages-empty", lambda c: c.http.post("/v1/chat/completions",
                                             json=chat(c, messages=[])),
     422, "invalid_request", "§2.1"),
    ("role-unknown", lambda c: c.http.post("/v1/chat/completions", json=chat(
        c, messages=[{"role": "wizard", "content": "x"}])), 422, "invalid_request",
     "§2.1"),
    ("stream-not-bool", lambda c: c.http.post("/v1/chat/completions",
                                              json=chat(c, stream="yes")),
     422, "invalid_request", "§2.1"),
    ("oversize-body", lambda c: c.http.post("/v1/chat/completions", json=chat(
        c, messages=[{"role": "user", "content": "x" * (1024 * 1024 + 1)}])),
     413, None, "§2.1"),
    ("bad-explain-mode", lambda c: c.chat(headers={"x-explain-mode": "graph"}),
     400, "invalid_explain_mode", "§2.1"),
    ("bad-granularity", lambda c: c.chat(headers={"x-explain-mode": "hypergraph",
                                                  "x-explain-granularity": "word"}),
     400, None, "§2.1"),
    ("bad-budget", lambda c: c.chat(headers={"x-explain-mode": "hypergraph",
                                             "x-explain-budget": "soon"}),
     400, None, "§2.1"),
    ("bad-trace-id", lambda c: c.chat(headers={"x-explain-mode": "hypergraph",
                                               "x-trace-id": "../../etc/passwd"}),
     400, None, "§2.1"),
    ("unknown-route", lambda c: c.http.get("/v1/nothing-here"), 404, None, "§2"),
    ("unknown-method", lambda c: c.http.put("/v1/chat/completions", json=chat(c)),
     405, None, "§2.10"),
    # On the chat route, which every target serves; the header's token is valid, so
    # only the query string can make this a 400.
    ("token-in-query", lambda c: c.http.post("/v1/chat/completions", json=chat(c),
                                             params={"access_token": "abc"}),
     400, None, "§3"),
]


# What a case needs beyond a chat route: the explain headers are the explain capability's,
# and a query-string token is refused by a gateway that checks tokens (§3).
CASE_NEEDS = {"bad-explain-mode": "explain", "bad-granularity": "explain",
              "bad-budget": "explain", "bad-trace-id": "explain", "token-in-query": "auth"}
PARAMS = [pytest.param(*case, id=case[0],
                       marks=[pytest.mark.needs(CASE_NEEDS[case[0]])]
                       if case[0] in CASE_NEEDS else [])
          for case in CASES]
# The route of the unknown-method case allows POST, and PUT was what it refused.
ALLOWED_ON_CHAT = "POST"


@pytest.mark.clause("§2/error-body", "§2.1/body-validation", "§2.1/explain-mode",
                    "§2.1/granularity", "§2.1/budget", "§2.1/client-trace-id",
                    "§2.10/method-not-allowed", "§3/query-token")
@pytest.mark.needs("chat")
@pytest.mark.parametrize("name,send,status,code,section", PARAMS)
def test_bad_input_gets_an_exact_json_error(name: str, send: Send, status: int,
                                            code: str | None, section: str,
                                            gateway: SidecarClient, evidence: Evidence) -> None:
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
    leaked = [match.group(0) for match in LEAKS.finditer(response.text)]
    assert not leaked, f"§2: {name}: the error body leaks {leaked}"
    if status == 405:
        allow = {m.strip().upper() for m in response.headers.get("allow", "").split(",")}
        assert allow - {""}, f"{section}: {name}: 405 without Allow"
        assert ALLOWED_ON_CHAT in allow and "PUT" not in allow, (
            f"{section}: {name}: Allow {response.headers['allow']!r} is not the route's "
            f"methods (it serves {ALLOWED_ON_CHAT}, and refused PUT)")
    evidence.record(case=name, status=response.status_code, code=body["code"],
                    contract=section)


@pytest.mark.clause("§3/unauthorized")
@pytest.mark.needs("chat", "auth")
@pytest.mark.parametrize("authorization", [None, "Basic dXNlcjpwYXNz", "Bearer", "Token abc123"])
def test_missing_or_malformed_credentials_are_401_with_a_challenge(
        authorization: str | None, sidecar_target: Target, evidence: Evidence) -> None:
    headers = {"authorization": authorization} if authorization is not None else {}
    response = httpx.post(sidecar_target.url + "/v1/chat/completions", headers=headers,
                          json={"model": sidecar_target.model,
                                "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 401 and response.json().get("code") == "unauthorized", (
        f"§3: a chat with Authorization {authorization and authorization.split()[0]!r} got "
        f"{response.status_code} {response.text[:120]}, not 401 unauthorized")
    assert response.headers.get("www-authenticate", "").lower().startswith("bearer"), (
        "§3: a 401 without WWW-Authenticate: Bearer")
    evidence.record(authorization=authorization and authorization.split()[0],
                    status=401, challenge=response.headers["www-authenticate"])


@pytest.mark.clause("§3/query-token")
@pytest.mark.needs("chat", "auth")
def test_a_token_in_the_query_string_alone_is_refused(gateway: SidecarClient,
                                                      evidence: Evidence) -> None:
    """The EventSource convenience: a valid token sent as ?access_token= with no
    Authorization header. §3 refuses it (400; a 401 for the missing header is a refusal
    too); accepting it puts tokens in every access log."""
    token = gateway.headers.get("authorization", "").removeprefix("Bearer ")
    if not token:
        pytest.fail("§3: the gateway client holds no token to send in the query string")
    answers = {}
    for name in ("access_token", "token"):
        response = httpx.post(gateway.base_url + "/v1/chat/completions",
                              params={name: token},
                              json={"model": gateway.model,
                                    "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code in (400, 401), (
            f"§3: a valid token in ?{name}= without an Authorization header was answered "
            f"{response.status_code}, not refused (400)")
        answers[name] = response.status_code
    evidence.record(answers=answers)
