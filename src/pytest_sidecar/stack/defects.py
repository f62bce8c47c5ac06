"""Opt-in defects: realistic bugs of a gateway implementation that the reference stack can
be switched to have, one clause each, to prove that the suite catches them. Each is a
seam: it substitutes policies (stack/policies.py), a response rewrite or a setting when
the stack is built (stack/defect_seams.py holds what they substitute), so no handler
asks which defect runs.

`sidecar-stack serve --defect NAME` (repeatable; `--defect list` lists them) or
`SIDECAR_DEFECTS=a,b` in the environment (the embedded and dedicated stacks of a pytest
run inherit it). None is a crash: each is the kind of slip a reviewer misses. The
detection matrix (docs/detection.md) runs the suite against each and checks that exactly
the specs for that clause fail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import defect_seams as seams
from .exceptions import StackError
from .rewrite import Rewrite

if TYPE_CHECKING:
    pass

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
    env: Mapping[str, str] = field(default_factory=dict)  # stack settings it sets


_ALL = (
    # §2: correlation
    Defect("error-without-request-id", "§2", "error responses carry no x-request-id",
           rewrite=Rewrite(headers=seams.error_without_request_id)),
    Defect("trace-id-not-echoed", "§2",
           "a request's own x-trace-id is never echoed; every response gets a fresh one",
           policies={"echo_client_trace_ids": False}),
    Defect("trace-ids-sequential", "§2",
           "gateway-made trace ids are an instance prefix and a counter: unique, guessable",
           policies={"new_trace_id": seams.sequential_id}),
    Defect("error-leaks-exception", "§2",
           "a malformed-JSON 400 says the exception's repr and the source line",
           rewrite=Rewrite(body=seams.leaky_json_error)),
    # §2.1: chat
    Defect("no-explanation-metadata", "§2.1",
           "an explained chat's body has no explanation_metadata (the header still names "
           "the trace)", rewrite=Rewrite(body=seams.no_metadata)),
    Defect("metadata-status-pending", "§2.1",
           "explanation_metadata.status says 'pending' instead of 'queued'",
           rewrite=Rewrite(body=seams.metadata_pending)),
    Defect("explain-mode-unchecked", "§2.1",
           "any x-explain-mode value is accepted (only 'hypergraph' opens a trace)",
           policies={"explain_headers": seams.mode_unchecked}),
    Defect("budget-unchecked", "§2.1", "x-explain-budget is not validated",
           policies={"explain_headers": seams.ignoring("x-explain-budget")}),
    Defect("client-trace-id-overwrites", "§2.1",
           "a reused client x-trace-id overwrites the trace instead of 409 trace_exists",
           policies={"refuse_taken_ids": False}),
    Defect("client-trace-id-ignored", "§2.1",
           "the client's x-trace-id is ignored; the gateway picks its own id",
           policies={"explain_headers": seams.ignoring("x-trace-id")}),
    Defect("schema-errors-400", "§2.1", "schema violations answer 400 instead of 422",
           policies={"schema_error_status": 400}),
    Defect("no-body-cap", "§2.1", "bodies over the size cap are accepted (no 413)",
           env={"MAX_BODY_BYTES": str(64 * 1024 * 1024)}),
    Defect("stream-without-done", "§2.1", "a streamed chat never sends data: [DONE]",
           rewrite=Rewrite(event_line=seams.without_done)),
    # §2.12: OpenAI compatibility
    Defect("finish-reason-stop-on-cut", "§2.12",
           "an answer cut by max_tokens says finish_reason 'stop', not 'length'",
           rewrite=Rewrite(body=seams.cut_as_stop, event_line=seams.cut_chunk_as_stop)),
    # §2.2-2.3: lifecycle and status
    Defect("status-without-stage", "§2.3", "the status object omits stage and featureset",
           rewrite=Rewrite(body=seams.status_view(seams.without_stage))),
    Defect("status-epoch-timestamps", "§2.3",
           "created_at/updated_at are epoch numbers, not RFC 3339 strings",
           rewrite=Rewrite(body=seams.status_view(seams.epoch_times))),
    Defect("unknown-trace-500", "§2.3", "an unknown trace id answers 500 instead of 404",
           policies={"unknown_trace": seams.lookup_failed}),
    # §2.4: graph
    Defect("graph-before-complete", "§2.4", "the graph of a running trace is served (200)",
           policies={"graph_before_complete": seams.made_up_graph}),
    Defect("canceled-graph-404", "§2.4",
           "the graph of a canceled trace answers 404 graph_not_ready, not 409",
           policies={"graph_of_ended": seams.graph_not_ready}),
    Defect("ttl-not-enforced", "§2.2", "traces never expire; the graph stays 200",
           policies={"expired": seams.never_expires}),
    Defect("explainer-never-runs", "§2.2",
           "the explainer's workers run but never take a job: every trace stays queued",
           policies={"explainer_consumes": False}),
    Defect("graph-ignores-gzip", "§2.4", "the graph is never gzip-encoded, whatever is asked",
           policies={"gzip_graph": False}),
    # §4: HIF
    Defect("hif-dangling-node", "§4", "one incidence names a node that is not in nodes",
           policies={"shape_graph": seams.graph(seams.dangling)}),
    Defect("hif-weight-over-one", "§4", "incidence weights can exceed 1",
           policies={"shape_graph": seams.graph(seams.heavy_edge)}),
    Defect("hif-wrong-version", "§4", "meta.version says 'hif-2' on the v1 route",
           policies={"shape_graph": seams.graph(seams.version_two)}),
    Defect("hif-token-outputs-short", "§4",
           "token graphs have one output_token fewer than the completion's tokens",
           policies={"shape_graph": seams.graph(seams.one_output_short)}),
    # §2.5: SSE
    Defect("sse-no-terminal-event", "§2.5",
           "the trace stream closes after the last status_update without complete/error",
           policies={"stream_final_event": False}),
    Defect("sse-no-event-ids", "§2.5", "trace stream events carry no id:",
           rewrite=Rewrite(event_line=seams.without_ids)),
    Defect("stream-error-as-complete", "§2.5",
           "the stream of a failed or canceled trace ends with event: complete",
           rewrite=Rewrite(event_line=seams.error_as_complete)),
    # §2.6: webhooks
    Defect("webhook-signature-over-json", "§2.6",
           "the signature is an HMAC of re-serialised JSON, not of the raw body sent",
           policies={"signed_bytes": seams.reserialised_json}),
    Defect("webhook-new-event-id-per-retry", "§2.6", "each retry gets a fresh event_id",
           policies={"new_event_id_per_retry": True}),
    Defect("webhook-no-retry", "§2.6", "a failed delivery is never retried",
           policies={"webhook_attempts": 1}),
    Defect("ssrf-dotted-only", "§2.6",
           "the SSRF guard checks only dotted-quad spellings (decimal, octal, hex pass)",
           policies={"ssrf_every_spelling": False}),
    Defect("webhook-secret-echoed", "§2.6", "the registration answer echoes the secret",
           policies={"echo_webhook_secret": True}),
    Defect("webhook-retries-forever", "§2.6", "failed deliveries are retried 8 times, not 5",
           policies={"webhook_attempts": 8}),
    Defect("webhook-naive-ts", "§2.6", "a delivery's ts is a naive time (no offset)",
           policies={"webhook_timestamp": seams.naive_timestamp}),
    Defect("webhook-events-ignored", "§2.6",
           "a hook is told of every ending of its trace, not only the events it registered",
           policies={"webhook_wants": seams.every_ending}),
    # §2.7: cancel
    Defect("cancel-terminal-202", "§2.7",
           "cancelling a complete trace answers 202 and marks it canceled",
           policies={"may_move": seams.complete_cancelable}),
    Defect("cancel-still-publishes", "§2.7",
           "the explainer publishes the graph of a trace canceled mid-way",
           policies={"cancel_stops_work": False}),
    # §2.8: idempotency
    Defect("idempotency-across-tenants", "§2.8",
           "idempotency keys are global: tenant B replays tenant A's response",
           policies={"idempotency_per_tenant": False}),
    Defect("idempotency-ignores-body", "§2.8",
           "the same key with another body replays the first response instead of 422",
           policies={"idempotency_checks_body": False}),
    # §2.9: explanation v2
    Defect("v2-foreign-completion", "§2.9",
           "the completion -> explanation route does not check the tenant",
           policies={"foreign_completions_hidden": False}),
    Defect("v2-epoch-created-at", "§2.9", "the explanation's created_at is epoch seconds",
           rewrite=Rewrite(body=seams.epoch_created_at)),
    # §2.10: health and methods
    Defect("readyz-ignores-store", "§2.10", "/readyz stays 200 with the status store down",
           policies={"readiness_checks_store": False}),
    Defect("healthz-follows-readiness", "§2.10", "/healthz answers 503 when a dependency is down",
           policies={"healthz_follows_readiness": True}),
    Defect("405-without-allow", "§2.10", "405 answers carry no Allow header",
           rewrite=Rewrite(headers=seams.drop_allow)),
    Defect("405-wrong-allow", "§2.10", "a 405's Allow names methods the route does not serve",
           rewrite=Rewrite(headers=seams.wrong_allow)),
    # §2.11: CORS
    Defect("cors-reflects-any-origin", "§2.11", "any Origin is echoed as allowed",
           policies={"origin_allowed": seams.any_origin}),
    Defect("cors-prefix-match", "§2.11",
           "the allow-list is matched by prefix: https://app.example.evil.example passes",
           policies={"origin_allowed": seams.prefix_origin}),
    # §3: access control
    Defect("explanation-route-unauthenticated", "§3",
           "GET /v1/chat/completions/{id}/explanation needs no token",
           policies={"explanation_needs_token": False}),
    Defect("read-token-can-cancel", "§3", "DELETE accepts a token with only traces:read",
           policies={"scope_of": seams.delete_needs_read}),
    Defect("unknown-token-401", "§3", "an unknown token answers 401 instead of 403 forbidden",
           policies={"unknown_token": seams.unknown_token_unauthorized}),
    Defect("foreign-status-readable", "§3", "another tenant's trace status is served",
           policies={"foreign_trace": seams.status_readable}),
    Defect("foreign-cancel-allowed", "§3", "another tenant's trace can be canceled",
           policies={"foreign_trace": seams.cancel_allowed}),
    Defect("foreign-trace-403", "§3",
           "another tenant's trace answers 403 (distinguishable from a missing one)",
           policies={"foreign_trace": seams.forbidden}),
    Defect("token-in-query-accepted", "§3", "an access_token query parameter is accepted",
           policies={"credentials": seams.query_ignored}),
    Defect("query-token-authenticates", "§3",
           "without an Authorization header, a token in ?access_token= authenticates the "
           "request (the EventSource convenience)",
           policies={"credentials": seams.query_authenticates}),
    Defect("tokens-not-checked", "§3",
           "a request without a token, or with a malformed header, is served on every route "
           "as an anonymous caller with every scope",
           policies={"serve_without_token": True}),
    Defect("tenant-header-honored", "§3",
           "an x-tenant-id request header overrides the token's tenant",
           policies={"tenant_of": seams.header_tenant}),
    # §3: rate limits
    Defect("denied-requests-spend-tokens", "§3",
           "requests refused by auth still spend rate-limit tokens",
           policies={"refusals_spend_tokens": True}),
    Defect("retry-after-zero", "§3", "429 answers carry Retry-After: 0",
           rewrite=Rewrite(headers=seams.retry_after_zero)),
    Defect("rate-limit-shared-by-tenants", "§3",
           "one bucket per category for all tenants, not per (tenant, category)",
           policies={"bucket_of": seams.one_bucket}),
    Defect("rate-limited-opens-trace", "§3", "a chat refused with 429 still opens its trace",
           policies={"trace_despite_429": True}),
    # §6: metrics
    Defect("metrics-trace-id-label", "§6", "status reads are counted with a trace_id label",
           policies={"label_reads_by_trace": True}),
    Defect("status-get-counted-twice", "§6", "traces_status_get_total counts each read twice",
           policies={"status_read_weight": 2}),
    Defect("no-rate-limit-counter", "§6", "rate_limit_rejections_total never moves",
           policies={"count_rate_limited": False}),
    # §7: audit log and logs
    Defect("audit-raw-snippet", "§7", "the audit snippet is the raw first message (PII)",
           policies={"scrub_snippet": seams.raw_text}),
    Defect("audit-no-deny-lines", "§7", "requests refused by auth get no audit line",
           policies={"audit_refusals": False}),
    Defect("log-user-text", "§7", "the gateway's JSON log line carries the user's prompt",
           policies={"log_prompt": True}),
    Defect("store-without-expires-at", "§7",
           "status store records carry no expires_at",
           policies={"stored_record": seams.without_expires_at}),
    # §7: chaos control
    Defect("chaos-lease-ignored", "§7", "a chaos flag whose expires_at passed stays on",
           policies={"chaos_leases": False}),
    Defect("fail-attribution-completes", "§7",
           "fail-attribution in fail mode is ignored: traces complete",
           policies={"honour_fail_attribution": False}),
    Defect("drop-s3-completes", "§7",
           "with drop-s3 the trace still ends complete, naming an artifact never written",
           policies={"honour_drop_s3": False}),
    Defect("upstream-error-html", "§2.1",
           "a failed upstream call answers 502 with an HTML page, not a JSON error",
           policies={"upstream_failure": seams.html_upstream_error}),
    Defect("stream-cut-completes", "§2.1",
           "an upstream stream cut mid-way ends the client's stream with [DONE], as a success",
           policies={"cut_stream_line": "data: [DONE]"}),
    Defect("upstream-timeout-ignored", "§2.1",
           "the gateway waits out a slow upstream past its timeout and answers 200",
           policies={"enforce_upstream_timeout": False}),
    # §10: resilience
    Defect("breaker-never-opens", "§10", "the upstream circuit breaker never opens",
           policies={"breaker_opens": False}),
    Defect("webhooks-in-memory", "§10",
           "webhook registrations live in memory: a restart forgets them, and the endings "
           "of traces registered before it are never delivered",
           policies={"durable_webhooks": False}),
    Defect("stall-fails-jobs", "§10",
           "a job that overran its wall-clock deadline (a process only paused: SIGSTOP, a "
           "long GC) fails its trace with no error saying why",
           policies={"job_deadline_s": 1.5}),
    Defect("queue-in-memory", "§10",
           "the explainer takes each job out of the durable queue on receipt, so its queue "
           "lives in its memory: a killed explainer loses acknowledged traces",
           policies={"durable_queue": False}),
    Defect("explain-accepted-when-store-down", "§10",
           "with the status store down explain requests are still acknowledged",
           policies={"explain_needs": ("explainer",)}),
)

DEFECTS: dict[str, Defect] = {defect.name: defect for defect in _ALL}

class UnknownDefect(StackError, ValueError):
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
