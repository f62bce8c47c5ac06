"""Audit log and PII (CONTRACT §7): the events of a spec's own requests are journaled
(chat.submit, rbac.deny, the trace's lifecycle), and no line holds a token, an
Authorization value or unscrubbed PII. A spec's own line is found by any key the contract
names (request id, trace id, tenant + event + time); raw PII fails wherever it is, and
"clean" is judged only once the line that carried the PII canaries has been found."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from pytest_sidecar import Evidence, GatewayFactory, SidecarClient, Tenant, Traces
from pytest_sidecar.contracts.lifecycle import order_errors
from pytest_sidecar.contracts.pii import scrub
from pytest_sidecar.contracts.timestamps import parse_rfc3339
from pytest_sidecar.fixtures.files import AuditLog
from pytest_sidecar.vocabulary.states import RANK

pytestmark = [pytest.mark.profile("security"), pytest.mark.security]

PII_MESSAGE = ("Card 4111 1111 1111 1111, mail jane.roe@example.org, call +1 415 555 0134, "
               "SSN 123-45-6789, IBAN GB82 WEST 1234 5698 7654 32, key sk-"
               "proj-abcdefghijklmnopqrstuvwxyz012345")
RAW_PII = ("4111 1111 1111 1111", "jane.roe@example.org", "415 555 0134", "123-45-6789",
           "GB82 WEST", "sk-proj-abcdefghij")


REQUEST_FIELDS = {"ts", "service", "event", "tenant_id", "trace_id", "request_id", "subject",
                  "scopes", "path", "method", "status"}
LIFECYCLE_FIELDS = {"ts", "service", "event", "trace_id"}
CLOCK_SLACK_S = 2.0  # the target's clock against the runner's, for the time key


@dataclass(frozen=True)
class Sent:
    """A request this spec sent: its response and when, to find its audit line by."""

    response: httpx.Response
    at: tuple[float, float]  # wall clock before sending, after the answer

    @classmethod
    def of(cls, send: Callable[[], httpx.Response]) -> Sent:
        before = time.time()
        response = send()
        return cls(response, (before, time.time()))


def epoch(ts: Any) -> float | None:
    """A line's `ts` as epoch seconds (RFC 3339 or a number), else None."""
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        return float(ts)
    parsed = parse_rfc3339(ts)
    return parsed.timestamp() if parsed else None


def own_lines(lines: list[dict[str, Any]], sent: Sent, event: str,
              tenant_id: str | None) -> tuple[str | None, list[dict[str, Any]]]:
    """(how, lines) of one request's `event`, by each key §7 names, most exact first: its
    request id; its trace id (the x-trace-id the response names); else its tenant, event
    and time; for a caller with no tenant (a refused anonymous request) and no id to go
    by, its event, status and time. A target that omits a header is still found, and
    judged on the line it wrote."""
    request_id = sent.response.headers.get("x-request-id")
    trace_ids = {sent.response.headers.get("x-trace-id"),
                 sent.response.request.headers.get("x-trace-id")} - {None}
    start, end = sent.at[0] - CLOCK_SLACK_S, sent.at[1] + CLOCK_SLACK_S
    keys: tuple[tuple[str, Callable[[dict[str, Any]], bool]], ...] = (
        ("request_id", lambda line: bool(request_id) and line.get("request_id") == request_id),
        ("trace_id", lambda line: line.get("trace_id") in trace_ids),
        ("tenant, event and time", lambda line: tenant_id is not None
         and line.get("tenant_id") == tenant_id
         and start <= (epoch(line.get("ts")) or 0.0) <= end),
        # Indistinguishable from another anonymous refusal of the same moment, but either
        # line shows the gateway journals such refusals, which is what is judged.
        ("event, status and time", lambda line: tenant_id is None and not request_id
         and line.get("status") == sent.response.status_code
         and start <= (epoch(line.get("ts")) or 0.0) <= end),
    )
    for how, matches in keys:
        found = [line for line in lines if line.get("event") == event and matches(line)]
        if found:
            return how, found
    return None, []


@pytest.mark.clause("§7/audit-events")
@pytest.mark.needs("chat", "explain", "audit_log")
def test_the_submit_and_queued_lines_of_a_trace_are_journaled(
        gateway_factory: GatewayFactory, audit_log: AuditLog, traces: Traces, tenants: Mapping[str,
        Tenant],
        evidence: Evidence) -> None:
    """Judged on the trace as queued: what is journaled at submit time needs no explainer."""
    writer = gateway_factory("a", "write")
    tenant = tenants["a"].id if tenants.get("a") else None
    before = time.time()
    opened = traces.open(writer)
    sent, trace_id = Sent(opened.response, (before, time.time())), opened.trace_id

    def journaled(lines: list[dict[str, Any]]) -> bool:
        return bool(own_lines(lines, sent, "chat.submit", tenant)[1]) and any(
            line.get("trace_id") == trace_id and line.get("event") == "trace.queued"
            for line in lines)

    lines = audit_log.wait_for(journaled)
    assert lines, f"§7: the audit log {audit_log.path} is empty after this spec's requests"
    how, submits = own_lines(lines, sent, "chat.submit", tenant)
    assert submits, (f"§7: no chat.submit line for the explained chat (by request id, trace "
                     f"id {trace_id}, or tenant and time), among {len(lines)} lines")
    submit = submits[0]
    assert (submit.get("method"), submit.get("path"), submit.get("status")) == (
        "POST", "/v1/chat/completions", 200), f"§7: chat.submit line {submit}"
    if tenant is not None:
        assert submit.get("tenant_id") == tenant, f"§7: chat.submit tenant {submit}"
    assert set(submit) >= REQUEST_FIELDS, f"§7: chat.submit lacks {REQUEST_FIELDS - set(submit)}"
    events = lifecycle_of(lines, trace_id)
    assert events and events[0] == "queued", f"§7: lifecycle lines of {trace_id}: {events}"
    assert not order_errors(events), f"§7: lifecycle lines out of order: {events}"
    incomplete = [line for line in lines if line.get("trace_id") == trace_id
                  and line.get("event") == "trace.queued" and not set(line) >= LIFECYCLE_FIELDS]
    assert not incomplete, f"§7: lifecycle lines lack fields: {incomplete[:1]}"
    evidence.record(trace_id=trace_id, audit_lines=len(lines), found_by=how, lifecycle=events)


def lifecycle_of(lines: list[dict[str, Any]], trace_id: str) -> list[str]:
    """The states a trace's lifecycle lines journal, in order."""
    return [str(line["event"]).removeprefix("trace.") for line in lines
            if line.get("trace_id") == trace_id
            and str(line.get("event", "")).removeprefix("trace.") in RANK]


@pytest.mark.clause("§7/audit-events")
@pytest.mark.needs("chat", "explain", "audit_log")
def test_a_traces_ending_is_journaled_once(gateway: SidecarClient, audit_log: AuditLog,
                                           traces: Traces,
                                           evidence: Evidence) -> None:
    """Whatever the trace ended as (complete, failed, canceled), that ending, once."""
    done = traces.finished(gateway)
    ending = f"trace.{done.state}"
    lines = audit_log.wait_for(lambda found: any(
        line.get("trace_id") == done.trace_id and line.get("event") == ending
        for line in found))
    events = lifecycle_of(lines, done.trace_id)
    assert events.count(done.state) == 1, (
        f"§7: {ending} journaled {events.count(done.state)} times for {done.trace_id}: "
        f"{events}")
    assert events[0] == "queued" and not order_errors(events), (
        f"§7: lifecycle lines of {done.trace_id}: {events}")
    assert len(events) == len(set(events)), f"§7: a lifecycle event journaled twice: {events}"
    incomplete = [line for line in lines if line.get("trace_id") == done.trace_id
                  and str(line.get("event", "")).startswith("trace.")
                  and not set(line) >= LIFECYCLE_FIELDS]
    assert not incomplete, f"§7: lifecycle lines lack fields: {incomplete[:1]}"
    evidence.record(trace_id=done.trace_id, ending=done.state, lifecycle=events)


@pytest.mark.clause("§7/audit-events")
@pytest.mark.needs("chat", "auth", "audit_log")
def test_refused_requests_are_journaled_as_rbac_deny(gateway_factory: GatewayFactory,
                                                     audit_log: AuditLog, tenants: Mapping[str,
                                                     Tenant],
                                                     evidence: Evidence) -> None:
    reader, anonymous = gateway_factory("a", "read"), gateway_factory("a", "anonymous")
    tenant = tenants["a"].id if tenants.get("a") else None
    denied = {"missing_scope": (Sent.of(reader.chat), tenant),
              "unauthorized": (Sent.of(anonymous.chat), None)}

    def journaled(lines: list[dict[str, Any]]) -> bool:
        return all(own_lines(lines, sent, "rbac.deny", who)[1]
                   for sent, who in denied.values())

    lines = audit_log.wait_for(journaled)
    found = {}
    for why, (sent, who) in denied.items():
        status = sent.response.status_code
        how, mine = own_lines(lines, sent, "rbac.deny", who)
        assert mine, (f"§7: no rbac.deny line for a chat refused {status} ({why}), by request "
                      "id, trace id, or tenant and time")
        line = mine[0]
        assert line.get("status") == status, f"§7: a {status} {why} refusal journaled as {line}"
        assert set(line) >= REQUEST_FIELDS, f"§7: rbac.deny lacks {REQUEST_FIELDS - set(line)}"
        found[why] = {"status": status, "found_by": how}
    evidence.record(denials=found, audit_lines=len(lines))


@pytest.mark.clause("§7/audit-clean")
@pytest.mark.needs("chat", "tenants:2", "audit_log")
def test_no_line_holds_a_token_or_unscrubbed_pii(gateway_factory: GatewayFactory,
                                                 audit_log: AuditLog,
                                                 tenants: Mapping[str, Tenant],
                                                 evidence: Evidence) -> None:
    writer = gateway_factory("a", "write")
    sent = Sent.of(lambda: writer.chat([{"role": "user", "content": PII_MESSAGE}]))
    assert sent.response.status_code == 200, (
        f"§2.1: the chat with PII answered {sent.response.status_code}")
    # A secret in a header the gateway must never log.
    writer.http.get("/v1/traces/x/status", headers={"x-api-key": tenants["b"].tokens.write or ""})
    lines = audit_log.wait_for(
        lambda found: bool(own_lines(found, sent, "chat.submit", tenants["a"].id)[1]))
    how, mine = own_lines(lines, sent, "chat.submit", tenants["a"].id)
    text = audit_log.text()
    tokens = [t for tenant in tenants.values() for t in (tenant.tokens.write, tenant.tokens.read)
              if t]
    # Raw PII is a failure wherever it is, whichever request's line carries it; a line
    # that is ours (by a key of this request) is said so, to find the cause.
    keys = {sent.response.headers.get("x-request-id"),
            sent.response.headers.get("x-trace-id")} - {None}
    hits = [f"line {n}: {canary!r} ({'ours' if any(k in raw for k in keys) else 'not ours'})"
            for n, raw in enumerate(text.split("\n"), 1) for canary in RAW_PII if canary in raw]
    problems = [f"raw PII in the audit log: {hits[:6]}"] if hits else []
    if any(t in text for t in tokens):
        problems.append("a token value is in the audit log")
    if not mine:  # presence before absence: "clean" over no line of ours is no verdict
        problems.append(f"the chat carrying PII canaries has no chat.submit line (by request "
                        f"id, trace id, or tenant and time) among {len(lines)}, so its "
                        "scrubbing cannot be judged")
    assert not problems, "§7: " + "; ".join(problems)
    snippet = mine[0].get("snippet")
    if snippet is not None:  # optional (§7 `snippet?`); when there, scrubbed and short
        assert isinstance(snippet, str) and len(snippet) <= 64, f"§7: snippet {snippet!r}"
        assert scrub(snippet) == snippet, "§7: the snippet still holds PII or a secret"
    evidence.record(lines=len(lines), tokens_searched=len(tokens), canaries=len(RAW_PII),
                    found_by=how, snippet=snippet)
