"""Audit log and PII (CONTRACT §7): every request this session made has its audit line;
no line holds a token, an Authorization value or unscrubbed PII; the scrubber meets its
precision/recall on the labelled corpus shipped in the package."""

from __future__ import annotations

import glob
import json
import os
import time
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from pytest_sidecar.contracts.pii import PLACEHOLDERS, scrub
from pytest_sidecar.fixtures.traces import Traces
from pytest_sidecar.target import Target

pytestmark = [pytest.mark.profile("security"), pytest.mark.security,
              pytest.mark.contract("§7")]

LABELS = ("EMAIL", "PHONE", "CARD", "SSN", "IBAN", "SECRET")
MIN_RECALL, MAX_FALSE_POSITIVE_RATE = 0.99, 0.002
PII_MESSAGE = ("Card 4111 1111 1111 1111, mail jane.roe@example.org, call +1 415 555 0134, "
               "SSN 123-45-6789, IBAN GB82 WEST 1234 5698 7654 32, key sk-"
               "proj-abcdefghijklmnopqrstuvwxyz012345")
RAW_PII = ("4111 1111 1111 1111", "jane.roe@example.org", "415 555 0134", "123-45-6789",
           "GB82 WEST", "sk-proj-abcdefghij")


def audit_lines(target: Target) -> list[dict[str, Any]]:
    text = Path(target.audit_log or "").read_text(encoding="utf-8")
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = json.loads(raw)  # every line is one JSON object
        assert isinstance(line, dict), f"audit line {number} is not an object"
        lines.append(line)
    return lines


def journaled(request_journal: str) -> list[dict[str, Any]]:
    """Every request the suite's clients made to the target so far, in every worker."""
    requests = []
    for path in glob.glob(os.path.join(os.path.dirname(request_journal), "*.jsonl")):
        with open(path, encoding="utf-8") as handle:
            requests += [json.loads(line) for line in handle if line.strip()]
    return [r for r in requests if r["path"].startswith("/v1/")]


@pytest.mark.needs("chat", "explain", "auth", "cancel", "audit_log")
def test_every_request_this_session_made_has_its_audit_line(
        gateway_factory: Any, sidecar_target: Target, request_journal: str,
        traces: Traces, evidence: Any) -> None:
    writer, reader = gateway_factory("a", "write"), gateway_factory("a", "read")
    anonymous = gateway_factory("a", "anonymous")
    trace_id = traces.finished(writer).trace_id
    writer.graph(trace_id)
    writer.cancel(trace_id)  # 409: already complete
    reader.chat()  # 403 missing_scope
    anonymous.status(trace_id)  # 401
    writer.http.get("/v1/no-such-route")  # 404
    time.sleep(0.1)  # lifecycle lines are written asynchronously; request lines are not
    made = journaled(request_journal)
    lines = audit_lines(sidecar_target)
    by_request = {line.get("request_id"): line for line in lines
                  if line["event"] not in ("trace.queued", "trace.running", "trace.complete",
                                           "trace.failed", "trace.canceled",
                                           "webhook.delivered")}
    missing = [r for r in made if r["request_id"] not in by_request]
    assert not missing, f"{len(missing)} of {len(made)} requests have no audit line: {missing[:3]}"
    for request in made:
        line = by_request[request["request_id"]]
        assert (line["method"], line["path"], line["status"]) == (
            request["method"], request["path"], request["status"]), (request, line)
    events = Counter(line["event"] for line in lines)
    for event in ("chat.submit", "trace.read", "rbac.deny", "trace.queued", "trace.running",
                  "trace.complete"):
        assert events[event], f"no {event} line at all"
    own = [line for line in lines if line.get("trace_id") == trace_id]
    lifecycle = [line["event"] for line in own if line["event"].startswith("trace.")
                 and line["event"] not in ("trace.read", "trace.cancel")]
    assert lifecycle == ["trace.queued", "trace.running", "trace.complete"], lifecycle
    required = {"ts", "service", "event", "tenant_id", "trace_id", "request_id", "path",
                "method", "status"}
    for line in by_request.values():
        assert required <= set(line), f"audit line lacks {required - set(line)}"
    evidence.record(requests_checked=len(made), audit_lines=len(lines), events=dict(events),
                    lifecycle=lifecycle)


@pytest.mark.needs("chat", "auth", "tenants:2", "audit_log")
def test_no_line_holds_a_token_or_unscrubbed_pii(gateway_factory: Any, sidecar_target: Target,
                                                 tenants: Any, evidence: Any) -> None:
    writer = gateway_factory("a", "write")
    chat = writer.chat([{"role": "user", "content": PII_MESSAGE}])
    assert chat.status_code == 200
    request_id = chat.headers["x-request-id"]
    # A secret in a header the gateway must never log, and one in the query string.
    writer.http.get("/v1/traces/x/status", headers={"x-api-key": tenants["b"].tokens.write})
    lines = audit_lines(sidecar_target)
    text = "\n".join(json.dumps(line) for line in lines)
    tokens = [t for tenant in tenants.values() for t in (tenant.tokens.write, tenant.tokens.read)
              if t]
    assert not [t for t in tokens if t in text], "a token value is in the audit log"
    assert "authorization" not in text.lower() and "bearer " not in text.lower()
    assert not [raw for raw in RAW_PII if raw in text], "raw PII in the audit log"
    dirty = [line for line in lines if scrub(json.dumps(line)) != json.dumps(line)]
    assert not dirty, f"{len(dirty)} lines still hold PII or secrets: {dirty[:1]}"
    submit = next(line for line in lines if line.get("request_id") == request_id)
    assert submit["event"] == "chat.submit"
    assert submit["snippet"] and len(submit["snippet"]) <= 64
    assert "[CARD]" in submit["snippet"], submit["snippet"]
    evidence.record(lines=len(lines), tokens_searched=len(tokens), snippet=submit["snippet"])


def test_scrubber_precision_and_recall_on_the_labelled_corpus(evidence: Any) -> None:
    corpus = resources.files("pytest_sidecar.contracts").joinpath("pii_corpus.jsonl")
    rows = [json.loads(line) for line in corpus.read_text().splitlines()]
    positives = [r for r in rows if r["label"] != "NONE"]
    negatives = [r for r in rows if r["label"] == "NONE"]
    assert len(positives) >= 500 and len(negatives) >= 2000, (len(positives), len(negatives))
    recall = {}
    for label in LABELS:
        cases = [r for r in positives if r["label"] == label]
        assert cases, f"no {label} positives"
        hits = sum(1 for r in cases if r["value"] not in (out := scrub(r["text"]))
                   and f"[{label}]" in out)
        recall[label] = hits / len(cases)
    false = [r["text"] for r in negatives if scrub(r["text"]) != r["text"]]
    not_idempotent = [r["text"] for r in rows if scrub(scrub(r["text"])) != scrub(r["text"])]
    low = {label: value for label, value in recall.items() if value < MIN_RECALL}
    assert not low, f"recall below {MIN_RECALL}: {low}"
    assert len(false) / len(negatives) <= MAX_FALSE_POSITIVE_RATE, false[:5]
    assert not not_idempotent, not_idempotent[:3]
    assert all(scrub(p) == p for p in PLACEHOLDERS)
    evidence.record(positives=len(positives), negatives=len(negatives),
                    recall={k: round(v, 4) for k, v in recall.items()},
                    false_positives=len(false),
                    precision=round(len(positives) / (len(positives) + len(false)), 4))
