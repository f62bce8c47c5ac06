"""Opt-in defects: realistic bugs of a gateway implementation that the reference stack can
be switched to have, one clause each, to prove that the suite catches them.

`sidecar-stack serve --defect NAME` (repeatable; `--defect list` lists them) or
`SIDECAR_DEFECTS=a,b` in the environment (the embedded and dedicated stacks of a pytest
run inherit it). None is a crash: each is the kind of slip a reviewer misses. The
detection matrix (docs/detection.md) runs the suite against each and checks that exactly
the specs for that clause fail.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import MutableHeaders

from .rewrite import Rewrite

ENV = "SIDECAR_DEFECTS"


@dataclass(frozen=True)
class Defect:
    """One realistic bug. A defect written as a seam substitutes a named policy
    (stack/policies.py) or a response rewrite (stack/rewrite.py) when the stack is built;
    the older ones are still switches their code asks about (`on`)."""

    name: str
    clause: str  # the docs/contract.md section it breaks
    summary: str
    policies: Mapping[str, Any] = field(default_factory=dict)
    rewrite: Rewrite | None = None


# -- defects written as seams ----------------------------------------------------------
def _any_origin(origin: bytes, allowed: frozenset[bytes]) -> bool:
    return True


def _without_done(path: str, line: str) -> str:
    return "" if path == "/v1/chat/completions" and line.replace(" ", "") == "data:[DONE]" \
        else line


def _without_ids(path: str, line: str) -> str:
    return "" if path.endswith("/stream") and line.startswith("id:") else line


def _prefix_origin(origin: bytes, allowed: frozenset[bytes]) -> bool:
    return any(origin.startswith(prefix) for prefix in allowed)


def _naive_timestamp(epoch_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_s))  # no offset


def _every_ending(hook: Mapping[str, Any], state: str) -> bool:
    return state in ("complete", "failed", "canceled")


_SEQUENCE = itertools.count(1)
_INSTANCE = f"{int(time.time() * 1000):x}"  # unique per process start, so restarts never collide


def _sequential_id() -> str:
    """The process's start then a counter: unique, and the next one is guessable."""
    return f"{_INSTANCE}-{next(_SEQUENCE):08d}"


def _error_as_complete(path: str, line: str) -> str:
    return "event: complete" if path.endswith("/stream") and line == "event: error" else line


def _wrong_allow(path: str, status: int, headers: MutableHeaders) -> None:
    if status == 405:
        headers["allow"] = "GET, PUT"


def _leaky_json_error(path: str, status: int, body: Any) -> Any:
    if status == 400 and isinstance(body, dict) and body.get("code") == "invalid_json":
        return {**body, "message": "JSONDecodeError('Expecting value: line 1 column 10 "
                                   "(char 9)') in sidecar/gateway/requests.py:88"}
    return body


def _epoch_created_at(path: str, status: int, body: Any) -> Any:
    if path.endswith("/explanation") and status == 200 and isinstance(body, dict) \
            and "created_at" in body:
        return {**body, "created_at": int(time.time())}
    return body


def _no_metadata(path: str, status: int, body: Any) -> Any:
    if path == "/v1/chat/completions" and status == 200 and isinstance(body, dict):
        return {k: v for k, v in body.items() if k != "explanation_metadata"}
    return body


def _metadata_pending(path: str, status: int, body: Any) -> Any:
    meta = body.get("explanation_metadata") if isinstance(body, dict) else None
    if path == "/v1/chat/completions" and isinstance(meta, dict):
        return {**body, "explanation_metadata": {**meta, "status": "pending"}}
    return body


def _status_view(change: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[..., Any]:
    """A rewrite of the status object wherever the status route answers it."""
    def edit(path: str, status: int, body: Any) -> Any:
        if path.endswith("/status") and status == 200 and isinstance(body, dict):
            return change(body)
        return body
    return edit


def _without_stage(view: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in view.items() if k not in ("stage", "featureset")}


def _epoch_times(view: dict[str, Any]) -> dict[str, Any]:
    return {**view, "created_at": int(time.time()), "updated_at": int(time.time())}


def _drop_allow(path: str, status: int, headers: MutableHeaders) -> None:
    if status == 405 and "allow" in headers:
        del headers["allow"]


def _retry_after_zero(path: str, status: int, headers: MutableHeaders) -> None:
    if status == 429 and "retry-after" in headers:
        headers["retry-after"] = "0"


def _error_without_request_id(path: str, status: int, headers: MutableHeaders) -> None:
    if status >= 400 and "x-request-id" in headers:
        del headers["x-request-id"]


def _graph(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], Any]:
    """A graph shaper that applies `change` to a copy of the graph."""
    def shape(graph: dict[str, Any]) -> dict[str, Any]:
        copy: dict[str, Any] = json.loads(json.dumps(graph))
        change(copy)
        return copy
    return shape


def _dangling(graph: dict[str, Any]) -> None:
    if graph["incidences"]:
        graph["incidences"][-1]["node_ids"][-1] = "feat-missing"


def _heavy_edge(graph: dict[str, Any]) -> None:
    if graph["incidences"]:
        graph["incidences"][0]["weight"] = 1.25


def _one_output_short(graph: dict[str, Any]) -> None:
    outputs = [n["id"] for n in graph["nodes"] if n["type"] == "output_token"]
    if outputs:
        graph["nodes"] = [n for n in graph["nodes"] if n["id"] != outputs[-1]]
        graph["incidences"] = [i for i in graph["incidences"] if outputs[-1] not in i["node_ids"]]


def _version_two(graph: dict[str, Any]) -> None:
    graph["meta"]["version"] = "hif-2"


_ALL = (
    # §2: correlation
    Defect("error-without-request-id", "§2", "error responses carry no x-request-id",
           rewrite=Rewrite(headers=_error_without_request_id)),
    Defect("trace-id-not-echoed", "§2",
           "a request's own x-trace-id is never echoed; every response gets a fresh one"),
    Defect("trace-ids-sequential", "§2",
           "gateway-made trace ids are an instance prefix and a counter: unique, guessable",
           policies={"new_trace_id": _sequential_id}),
    Defect("error-leaks-exception", "§2",
           "a malformed-JSON 400 says the exception's repr and the source line",
           rewrite=Rewrite(body=_leaky_json_error)),
    # §2.1: chat
    Defect("no-explanation-metadata", "§2.1",
           "an explained chat's body has no explanation_metadata (the header still names "
           "the trace)", rewrite=Rewrite(body=_no_metadata)),
    Defect("metadata-status-pending", "§2.1",
           "explanation_metadata.status says 'pending' instead of 'queued'",
           rewrite=Rewrite(body=_metadata_pending)),
    Defect("explain-mode-unchecked", "§2.1",
           "any x-explain-mode value is accepted (only 'hypergraph' opens a trace)"),
    Defect("budget-unchecked", "§2.1", "x-explain-budget is not validated"),
    Defect("client-trace-id-overwrites", "§2.1",
           "a reused client x-trace-id overwrites the trace instead of 409 trace_exists"),
    Defect("client-trace-id-ignored", "§2.1",
           "the client's x-trace-id is ignored; the gateway picks its own id"),
    Defect("schema-errors-400", "§2.1", "schema violations answer 400 instead of 422"),
    Defect("no-body-cap", "§2.1", "bodies over the size cap are accepted (no 413)"),
    Defect("stream-without-done", "§2.1", "a streamed chat never sends data: [DONE]",
           rewrite=Rewrite(event_line=_without_done)),
    # §2.2-2.3: lifecycle and status
    Defect("status-without-stage", "§2.3", "the status object omits stage and featureset",
           rewrite=Rewrite(body=_status_view(_without_stage))),
    Defect("status-epoch-timestamps", "§2.3",
           "created_at/updated_at are epoch numbers, not RFC 3339 strings",
           rewrite=Rewrite(body=_status_view(_epoch_times))),
    Defect("unknown-trace-500", "§2.3", "an unknown trace id answers 500 instead of 404"),
    # §2.4: graph
    Defect("graph-before-complete", "§2.4", "the graph of a running trace is served (200)"),
    Defect("canceled-graph-404", "§2.4",
           "the graph of a canceled trace answers 404 graph_not_ready, not 409"),
    Defect("ttl-not-enforced", "§2.2", "traces never expire; the graph stays 200"),
    Defect("explainer-never-runs", "§2.2",
           "the explainer's workers run but never take a job: every trace stays queued"),
    Defect("graph-ignores-gzip", "§2.4", "the graph is never gzip-encoded, whatever is asked"),
    # §4: HIF
    Defect("hif-dangling-node", "§4", "one incidence names a node that is not in nodes",
           policies={"shape_graph": _graph(_dangling)}),
    Defect("hif-weight-over-one", "§4", "incidence weights can exceed 1",
           policies={"shape_graph": _graph(_heavy_edge)}),
    Defect("hif-wrong-version", "§4", "meta.version says 'hif-2' on the v1 route",
           policies={"shape_graph": _graph(_version_two)}),
    Defect("hif-token-outputs-short", "§4",
           "token graphs have one output_token fewer than the completion's tokens",
           policies={"shape_graph": _graph(_one_output_short)}),
    # §2.5: SSE
    Defect("sse-no-terminal-event", "§2.5",
           "the trace stream closes after the last status_update without complete/error"),
    Defect("sse-no-event-ids", "§2.5", "trace stream events carry no id:",
           rewrite=Rewrite(event_line=_without_ids)),
    Defect("stream-error-as-complete", "§2.5",
           "the stream of a failed or canceled trace ends with event: complete",
           rewrite=Rewrite(event_line=_error_as_complete)),
    # §2.6: webhooks
    Defect("webhook-signature-over-json", "§2.6",
           "the signature is an HMAC of re-serialised JSON, not of the raw body sent"),
    Defect("webhook-new-event-id-per-retry", "§2.6", "each retry gets a fresh event_id"),
    Defect("webhook-no-retry", "§2.6", "a failed delivery is never retried"),
    Defect("ssrf-dotted-only", "§2.6",
           "the SSRF guard checks only dotted-quad spellings (decimal, octal, hex pass)"),
    Defect("webhook-secret-echoed", "§2.6", "the registration answer echoes the secret"),
    Defect("webhook-retries-forever", "§2.6", "failed deliveries are retried 8 times, not 5"),
    Defect("webhook-naive-ts", "§2.6", "a delivery's ts is a naive time (no offset)",
           policies={"webhook_timestamp": _naive_timestamp}),
    Defect("webhook-events-ignored", "§2.6",
           "a hook is told of every ending of its trace, not only the events it registered",
           policies={"webhook_wants": _every_ending}),
    # §2.7: cancel
    Defect("cancel-terminal-202", "§2.7",
           "cancelling a complete trace answers 202 and marks it canceled"),
    Defect("cancel-still-publishes", "§2.7",
           "the explainer publishes the graph of a trace canceled mid-way"),
    # §2.8: idempotency
    Defect("idempotency-across-tenants", "§2.8",
           "idempotency keys are global: tenant B replays tenant A's response"),
    Defect("idempotency-ignores-body", "§2.8",
           "the same key with another body replays the first response instead of 422"),
    # §2.9: explanation v2
    Defect("v2-foreign-completion", "§2.9",
           "the completion -> explanation route does not check the tenant"),
    Defect("v2-epoch-created-at", "§2.9", "the explanation's created_at is epoch seconds",
           rewrite=Rewrite(body=_epoch_created_at)),
    # §2.10: health and methods
    Defect("readyz-ignores-store", "§2.10", "/readyz stays 200 with the status store down"),
    Defect("healthz-follows-readiness", "§2.10", "/healthz answers 503 when a dependency is down"),
    Defect("405-without-allow", "§2.10", "405 answers carry no Allow header",
           rewrite=Rewrite(headers=_drop_allow)),
    Defect("405-wrong-allow", "§2.10", "a 405's Allow names methods the route does not serve",
           rewrite=Rewrite(headers=_wrong_allow)),
    # §2.11: CORS
    Defect("cors-reflects-any-origin", "§2.11", "any Origin is echoed as allowed",
           policies={"origin_allowed": _any_origin}),
    Defect("cors-prefix-match", "§2.11",
           "the allow-list is matched by prefix: https://app.example.evil.example passes",
           policies={"origin_allowed": _prefix_origin}),
    # §3: access control
    Defect("explanation-route-unauthenticated", "§3",
           "GET /v1/chat/completions/{id}/explanation needs no token"),
    Defect("read-token-can-cancel", "§3", "DELETE accepts a token with only traces:read"),
    Defect("unknown-token-401", "§3", "an unknown token answers 401 instead of 403 forbidden"),
    Defect("foreign-status-readable", "§3", "another tenant's trace status is served"),
    Defect("foreign-cancel-allowed", "§3", "another tenant's trace can be canceled"),
    Defect("foreign-trace-403", "§3",
           "another tenant's trace answers 403 (distinguishable from a missing one)"),
    Defect("token-in-query-accepted", "§3", "an access_token query parameter is accepted"),
    Defect("query-token-authenticates", "§3",
           "without an Authorization header, a token in ?access_token= authenticates the "
           "request (the EventSource convenience)"),
    Defect("tokens-not-checked", "§3",
           "a request without a token, or with a malformed header, is served on every route "
           "as an anonymous caller with every scope"),
    Defect("tenant-header-honored", "§3",
           "an x-tenant-id request header overrides the token's tenant"),
    # §3: rate limits
    Defect("denied-requests-spend-tokens", "§3",
           "requests refused by auth still spend rate-limit tokens"),
    Defect("retry-after-zero", "§3", "429 answers carry Retry-After: 0",
           rewrite=Rewrite(headers=_retry_after_zero)),
    Defect("rate-limit-shared-by-tenants", "§3",
           "one bucket per category for all tenants, not per (tenant, category)"),
    Defect("rate-limited-opens-trace", "§3", "a chat refused with 429 still opens its trace"),
    # §6: metrics
    Defect("metrics-trace-id-label", "§6", "status reads are counted with a trace_id label"),
    Defect("status-get-counted-twice", "§6", "traces_status_get_total counts each read twice"),
    Defect("no-rate-limit-counter", "§6", "rate_limit_rejections_total never moves"),
    # §7: audit log and logs
    Defect("audit-raw-snippet", "§7", "the audit snippet is the raw first message (PII)"),
    Defect("audit-no-deny-lines", "§7", "requests refused by auth get no audit line"),
    Defect("log-user-text", "§7", "the gateway's JSON log line carries the user's prompt"),
    Defect("store-without-expires-at", "§7",
           "status store records carry no expires_at"),
    # §7: chaos control
    Defect("chaos-lease-ignored", "§7", "a chaos flag whose expires_at passed stays on"),
    Defect("fail-attribution-completes", "§7",
           "fail-attribution in fail mode is ignored: traces complete"),
    Defect("drop-s3-completes", "§7",
           "with drop-s3 the trace still ends complete, naming an artifact never written"),
    Defect("upstream-error-html", "§2.1",
           "a failed upstream call answers 502 with an HTML page, not a JSON error"),
    Defect("stream-cut-completes", "§2.1",
           "an upstream stream cut mid-way ends the client's stream with [DONE], as a success"),
    Defect("upstream-timeout-ignored", "§2.1",
           "the gateway waits out a slow upstream past its timeout and answers 200"),
    # §10: resilience
    Defect("breaker-never-opens", "§10", "the upstream circuit breaker never opens"),
    Defect("webhooks-in-memory", "§10",
           "webhook registrations live in memory: a restart forgets them, and the endings "
           "of traces registered before it are never delivered"),
    Defect("stall-fails-jobs", "§10",
           "a job that overran its wall-clock deadline (a process only paused: SIGSTOP, a "
           "long GC) fails its trace with no error saying why"),
    Defect("queue-in-memory", "§10",
           "the explainer's queue lives in memory: a killed process loses acknowledged traces"),
    Defect("explain-accepted-when-store-down", "§10",
           "with the status store down explain requests are still acknowledged"),
)

DEFECTS: dict[str, Defect] = {defect.name: defect for defect in _ALL}

_active: frozenset[str] = frozenset()


class UnknownDefect(ValueError):
    """A defect name that is not in the registry."""


def parse(raw: str | Iterable[str]) -> frozenset[str]:
    """Defect names from a comma list or an iterable; unknown names raise UnknownDefect."""
    names = [n.strip() for n in (raw.split(",") if isinstance(raw, str) else raw)]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in DEFECTS]
    if unknown:
        raise UnknownDefect(f"unknown defect {', '.join(unknown)}; `sidecar-stack serve "
                            "--defect list` lists them")
    return frozenset(names)


def configure(names: Iterable[str]) -> None:
    """Switch on these defects for this process (once, at stack start)."""
    global _active
    _active = frozenset(names)


def on(name: str) -> bool:
    """True when the stack runs with this defect (a typo here is a programming error)."""
    assert name in DEFECTS, name
    return name in _active


def active() -> frozenset[str]:
    return _active
