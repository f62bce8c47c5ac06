"""Correlation and structured logs (CONTRACT §2): x-request-id and x-trace-id on every
response, errors included; the request's JSON log line carries the same ids; no log line
holds a token or user text."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_sidecar.client import request_head
from pytest_sidecar.contracts.openapi import documented_routes
from pytest_sidecar.fixtures.traces import Traces
from pytest_sidecar.target import Target
from pytest_sidecar.tls import tls_context

pytestmark = [pytest.mark.profile("observability"), pytest.mark.contract("§2")]

LOG_FIELDS = ("ts", "level", "service", "request_id", "trace_id", "tenant_id", "path",
              "status", "duration_ms")


def concrete(path: str, trace_id: str) -> str:
    return re.sub(r"\{[^}]+\}", trace_id, path)


@pytest.mark.clause("§2/request-id", "§2/trace-id-header")
@pytest.mark.needs("chat", "explain")
def test_every_response_carries_correlation_ids(gateway: Any, sidecar_target: Target,
                                                traces: Traces, sidecar_config: Any,
                                                evidence: Any) -> None:
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


def log_lines(target: Target) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(target.log or "").read_text().splitlines()
            if line.strip()]


@pytest.mark.clause("§2/structured-log")
@pytest.mark.needs("chat", "explain", "tenants:2", "structured_logs")
def test_the_log_line_of_a_request_carries_its_ids_and_no_secrets(
        gateway: Any, sidecar_target: Target, tenants: Any, evidence: Any) -> None:
    marker = "user-text-" + uuid.uuid4().hex
    chat = gateway.explain([{"role": "user", "content": f"{marker} my email is a@b.example"}])
    request_id, trace_id = chat.headers["x-request-id"], chat.headers["x-trace-id"]
    deadline, mine = time.monotonic() + 5, []
    while not mine and time.monotonic() < deadline:
        mine = [line for line in log_lines(sidecar_target)
                if line.get("request_id") == request_id]
        time.sleep(0.05)
    assert len(mine) == 1, f"{len(mine)} log lines for request {request_id}"
    line = mine[0]
    assert all(field in line for field in LOG_FIELDS), sorted(set(LOG_FIELDS) - set(line))
    assert (line["trace_id"], line["tenant_id"], line["status"]) == (
        trace_id, tenants["a"].id, 200)
    assert line["path"] == "/v1/chat/completions" and line["duration_ms"] >= 0
    text = Path(sidecar_target.log or "").read_text()
    tokens = [t for tenant in tenants.values() for t in (tenant.tokens.write, tenant.tokens.read)
              if t]
    assert not [t for t in tokens if t in text], "a token is in the log"
    assert marker not in text and "a@b.example" not in text, "user text is in the log"
    assert all(isinstance(json.loads(raw), dict) for raw in text.splitlines() if raw.strip())
    evidence.record(request_id=request_id, log_line=line, lines=len(text.splitlines()))
