"""Correlation (docs/contract.md §2) and the service log (§7): x-request-id and x-trace-id
on every response, errors included; a shared service log, whatever its format, holds no
token or user text."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest

from pytest_sidecar import Evidence, SidecarClient, SidecarConfig, Tenant, Traces
from pytest_sidecar.client import request_head
from pytest_sidecar.contracts.openapi import documented_routes
from pytest_sidecar.target import Target
from pytest_sidecar.tls import tls_context

pytestmark = [pytest.mark.profile("observability")]


def concrete(path: str, trace_id: str) -> str:
    return re.sub(r"\{[^}]+\}", trace_id, path)


@pytest.mark.clause("§2/request-id", "§2/trace-id-header")
@pytest.mark.needs("chat", "explain")
def test_every_response_carries_correlation_ids(gateway: SidecarClient, sidecar_target: Target,
                                                traces: Traces, sidecar_config: SidecarConfig,
                                                evidence: Evidence) -> None:
    # Headers are judged on a trace in any state; the DELETE gets a trace of its own, so
    # the webhook registered for 'canceled' on the first is never delivered.
    trace_id = traces.open(gateway).trace_id
    doomed = traces.open(gateway).trace_id
    seen_request_ids: set[str] = set()
    checked = 0
    with httpx.Client(base_url=sidecar_target.url, timeout=sidecar_config.timeout,
                      verify=tls_context(),
                      headers=gateway.headers) as http:
        requests = [(method, concrete(path, doomed if method == "DELETE" else trace_id))
                    for method, path in sorted(documented_routes())]
        requests += [("GET", "/v1/nowhere"), ("PUT", "/v1/chat/completions"),
                     ("GET", "/v1/traces/not-a-trace-of-ours/status")]
        for method, path in requests:
            # Webhooks are registered for an event that cannot happen any more (canceled).
            payload = {"url": "https://93.184.216.34/hook", "events": ["canceled"]} \
                if path.endswith("/webhooks") else None
            response = request_head(http, method, path, json=payload)
            request_id = response.headers.get("x-request-id")
            assert request_id, f"§2: {method} {path} ({response.status_code}) has no x-request-id"
            assert response.headers.get("x-trace-id"), (
                f"§2: {method} {path} ({response.status_code}) has no x-trace-id")
            assert request_id not in seen_request_ids, (
                f"§2: {method} {path} reused the request id {request_id}")
            seen_request_ids.add(request_id)
            for named in (trace_id, doomed):
                if f"/traces/{named}/" in path + "/":
                    assert response.headers["x-trace-id"] == named, (
                        f"§2: {method} {path}: x-trace-id {response.headers['x-trace-id']!r} "
                        f"is not the trace's id {named}")
            checked += 1
        echoed = http.get("/healthz", headers={"x-trace-id": "client-chosen-id"})
        assert echoed.headers.get("x-trace-id") == "client-chosen-id", (
            "§2: the request's x-trace-id was not echoed")
    evidence.record(responses=checked, trace_id=trace_id, echo="client-chosen-id")


LOG_WAIT_S = 5.0  # how long the service log may trail the response


def log_text(target: Target) -> str:
    try:
        return Path(target.log or "").read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


@pytest.mark.clause("§7/service-log")
@pytest.mark.needs("chat", "tenants:2", "structured_logs")
def test_the_service_log_holds_no_token_or_user_text(
        gateway: SidecarClient, sidecar_target: Target, tenants: Mapping[str, Tenant],
        evidence: Evidence) -> None:
    """Whatever the log's format (the contract asks no fields of it), the lines written
    for this spec's chat hold no token and none of its user text. Presence first: a log
    that wrote nothing for the chat cannot be judged clean."""
    marker = "user-text-" + uuid.uuid4().hex
    before = len(log_text(sidecar_target))
    chat = gateway.chat([{"role": "user", "content": f"{marker} my email is a@b.example"}])
    assert chat.status_code == 200, f"§2.1: the chat with user text got {chat.status_code}"
    deadline, written = time.monotonic() + LOG_WAIT_S, ""
    while not written and time.monotonic() < deadline:
        written = log_text(sidecar_target)[before:]
        time.sleep(0.05)
    assert written, (
        f"§7: the service log {sidecar_target.log} wrote nothing within {LOG_WAIT_S:g}s of "
        "a chat, so whether it keeps secrets out cannot be judged")
    text = log_text(sidecar_target)
    tokens = [t for tenant in tenants.values() for t in (tenant.tokens.write, tenant.tokens.read)
              if t]
    leaked = [f"tenant token #{n}" for n, t in enumerate(tokens, 1) if t in text]
    leaked += [what for what, needle in (("the chat's user text", marker),
                                         ("an e-mail address from the chat", "a@b.example"))
               if needle in text]
    assert not leaked, f"§7: the service log holds {', '.join(leaked)}"
    request_id = chat.headers.get("x-request-id")
    evidence.record(request_id=request_id, bytes_written=len(written),
                    names_request_id=bool(request_id and request_id in written),
                    tokens_searched=len(tokens))
