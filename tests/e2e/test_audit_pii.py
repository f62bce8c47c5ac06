"""Audit log and PII (CONTRACT §7): the events of a spec's own requests are journaled
(chat.submit, rbac.deny, the trace's lifecycle), and no line holds a token, an
Authorization value or unscrubbed PII, judged only once the line that carried the PII
canaries has been found."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_sidecar.contracts.lifecycle import order_errors
from pytest_sidecar.contracts.pii import scrub
from pytest_sidecar.fixtures.files import AuditLog
from pytest_sidecar.fixtures.traces import Traces
from pytest_sidecar.vocabulary.states import RANK

pytestmark = [pytest.mark.profile("security"), pytest.mark.security,
              pytest.mark.contract("§7")]

PII_MESSAGE = ("Card 4111 1111 1111 1111, mail jane.roe@example.org, call +1 415 555 0134, "
               "SSN 123-45-6789, IBAN GB82 WEST 1234 5698 7654 32, key sk-"
               "proj-abcdefghijklmnopqrstuvwxyz012345")
RAW_PII = ("4111 1111 1111 1111", "jane.roe@example.org", "415 555 0134", "123-45-6789",
           "GB82 WEST", "sk-proj-abcdefghij")


REQUEST_FIELDS = {"ts", "service", "event", "tenant_id", "trace_id", "request_id", "subject",
                  "scopes", "path", "method", "status"}
LIFECYCLE_FIELDS = {"ts", "service", "event", "trace_id"}


def line_of(lines: list[dict[str, Any]], request_id: str | None,
            event: str | None = None) -> dict[str, Any] | None:
    """The line of a request (its event's line, when lifecycle lines share the id)."""
    return next((line for line in lines if request_id and line.get("request_id") == request_id
                 and (event is None or line.get("event") == event)), None)


def line_for(lines: list[dict[str, Any]], response: Any) -> dict[str, Any] | None:
    """The line of a response: by its x-request-id, else (a target that omits the header,
    a §2 matter) by method, path and status, all unique to this spec."""
    found = line_of(lines, response.headers.get("x-request-id"))
    if found is not None or response.headers.get("x-request-id"):
        return found
    request = response.request
    return next((line for line in lines if (line.get("method"), line.get("path"),
                 line.get("status")) == (request.method, request.url.path,
                                         response.status_code)), None)


@pytest.mark.clause("§7/audit-events")
@pytest.mark.needs("chat", "explain", "auth", "audit_log")
def test_the_events_of_this_specs_requests_are_journaled(
        gateway_factory: Any, audit_log: AuditLog, traces: Traces, tenants: Any,
        evidence: Any) -> None:
    writer, reader = gateway_factory("a", "write"), gateway_factory("a", "read")
    anonymous = gateway_factory("a", "anonymous")
    done = traces.complete(writer)
    submitted = done.response.headers.get("x-request-id")
    denied = {"missing_scope": reader.chat(), "unauthorized": anonymous.status(done.trace_id)}

    def complete(lines: list[dict[str, Any]]) -> bool:
        own = {line.get("event") for line in lines if line.get("trace_id") == done.trace_id}
        return "trace.complete" in own and line_of(lines, submitted, "chat.submit") and all(
            line_for(lines, response) for response in denied.values())

    lines = audit_log.wait_for(complete)
    assert lines, f"§7: the audit log {audit_log.path} is empty after this spec's requests"
    submit = line_of(lines, submitted, "chat.submit")
    assert submit is not None, (
        f"§7: no chat.submit line for the explained chat (request {submitted}; its lines: "
        f"{[line.get('event') for line in lines if line.get('request_id') == submitted]})")
    assert (submit.get("method"), submit.get("path"), submit.get("status")) == (
        "POST", "/v1/chat/completions", 200), f"§7: chat.submit line {submit}"
    assert submit.get("tenant_id") == tenants["a"].id, f"§7: chat.submit tenant {submit}"
    assert set(submit) >= REQUEST_FIELDS, f"§7: chat.submit lacks {REQUEST_FIELDS - set(submit)}"
    for why, response in denied.items():
        line = line_for(lines, response)
        assert line is not None, (
            f"§7: no audit line for a request refused {response.status_code} ({why})")
        assert line.get("event") == "rbac.deny" and line.get("status") == response.status_code, (
            f"§7: a {response.status_code} {why} refusal is journaled as {line}")
        assert set(line) >= REQUEST_FIELDS, f"§7: rbac.deny lacks {REQUEST_FIELDS - set(line)}"
    lifecycle = [line for line in lines if line.get("trace_id") == done.trace_id
                 and str(line.get("event", "")).removeprefix("trace.") in RANK]
    events = [str(line["event"]).removeprefix("trace.") for line in lifecycle]
    assert events and events[0] == "queued" and events[-1] == "complete", (
        f"§7: lifecycle lines of {done.trace_id}: {events}")
    assert not order_errors(events), f"§7: lifecycle lines out of order: {events}"
    assert len(events) == len(set(events)), f"§7: a lifecycle event journaled twice: {events}"
    incomplete = [line for line in lifecycle if not set(line) >= LIFECYCLE_FIELDS]
    assert not incomplete, f"§7: lifecycle lines lack fields: {incomplete[:1]}"
    evidence.record(trace_id=done.trace_id, audit_lines=len(lines), lifecycle=events,
                    denials={why: r.status_code for why, r in denied.items()})


@pytest.mark.clause("§7/audit-clean")
@pytest.mark.needs("chat", "auth", "tenants:2", "audit_log")
def test_no_line_holds_a_token_or_unscrubbed_pii(gateway_factory: Any, audit_log: AuditLog,
                                                 tenants: Any, evidence: Any) -> None:
    writer = gateway_factory("a", "write")
    chat = writer.chat([{"role": "user", "content": PII_MESSAGE}])
    assert chat.status_code == 200, f"§2.1: the chat with PII answered {chat.status_code}"
    request_id = chat.headers.get("x-request-id")
    # A secret in a header the gateway must never log.
    writer.http.get("/v1/traces/x/status", headers={"x-api-key": tenants["b"].tokens.write})
    lines = audit_log.wait_for(lambda found: line_of(found, request_id, "chat.submit") is not None)
    # Presence first: the line of the request that carried the canaries must be there,
    # or "no PII" would be judged over nothing.
    submit = line_of(lines, request_id, "chat.submit")
    assert submit is not None, (
        f"§7: the chat carrying PII canaries (request {request_id}) has no audit line among "
        f"{len(lines)}, so its scrubbing cannot be judged")
    text = audit_log.text()
    tokens = [t for tenant in tenants.values() for t in (tenant.tokens.write, tenant.tokens.read)
              if t]
    assert not [t for t in tokens if t in text], "§7: a token value is in the audit log"
    raw = [canary for canary in RAW_PII if canary in text]
    assert not raw, f"§7: raw PII in the audit log ({len(raw)} of {len(RAW_PII)} canaries)"
    snippet = submit.get("snippet")
    if snippet is not None:  # optional (§7 `snippet?`); when there, scrubbed and short
        assert isinstance(snippet, str) and len(snippet) <= 64, f"§7: snippet {snippet!r}"
        assert scrub(snippet) == snippet, "§7: the snippet still holds PII or a secret"
    evidence.record(lines=len(lines), tokens_searched=len(tokens), canaries=len(RAW_PII),
                    request_id=request_id, snippet=snippet)
