"""The contract clause by clause: the coverage registry.

Each spec names the clauses it asserts with `@pytest.mark.clause("§2.5/ids", ...)`; the
report counts, per conformance profile, how many clauses the run asserted out of all
(the denominator) and lists those no spec asserted. A self-test keeps the markers and
this table in step. `owner` names the piece of work that will assert a clause the suite
cannot yet (an open issue), or says why it is not observable from outside.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Clause:
    id: str  # "§<section>/<name>"
    profile: str
    text: str
    owner: str | None = None  # set when no spec asserts it yet, and why

    @property
    def section(self) -> str:
        return self.id.split("/", 1)[0]


_CONTROL_PLANE = "the control plane"

_ALL = (
    Clause("§2/request-id", "observability", "every response carries a fresh x-request-id"),
    Clause("§2/trace-id-header", "observability",
           "x-trace-id is the trace id, else an echo of the request's, else fresh"),
    Clause("§2/error-body", "security",
           "gateway errors are JSON {code, message}; no traces, paths or versions"),
    Clause("§7/service-log", "observability",
           "a shared service log holds no token or user text (its format is free)"),
    Clause("§2/contract-routes", "core",
           "every route the declared capabilities need is served (extra routes are allowed)"),
    Clause("§2/trace-ids", "explain",
           "trace ids the gateway makes are random (>= 64 bits), never all zeros"),
    Clause("§2.1/explain-mode", "explain", "only x-explain-mode: hypergraph opens a trace; "
           "another value is 400 invalid_explain_mode"),
    Clause("§2.1/granularity", "explain", "x-explain-granularity sentence|token, else 400"),
    Clause("§2.1/budget", "explain", "x-explain-budget is an integer >= 1, else 400"),
    Clause("§2.1/client-trace-id", "explain",
           "a client x-trace-id matches the pattern (else 400) and is never overwritten (409)"),
    Clause("§2.1/body-validation", "security",
           "malformed JSON 400, schema violations 422, bodies over the cap 413"),
    Clause("§2.1/completion", "core", "the answer is an OpenAI chat completion object"),
    Clause("§2.1/metadata", "explain",
           "explanation_metadata (queued, granularity, stream endpoint) only with a trace"),
    Clause("§2.1/stream", "core", "stream: true sends SSE chunks ending data: [DONE]; the "
           "trace id in the x-trace-id header"),
    Clause("§2.1/upstream-errors", "resilience",
           "upstream failure -> 502/504 and no orphan trace"),
    Clause("§2.1/upstream-unconfigured", "core", "no upstream -> 503 upstream_unconfigured",
           "not observable on a configured target"),
    Clause("§2.2/states", "explain",
           "states move forward only and end in exactly one terminal state"),
    Clause("§2.2/ttl", "explain", "complete -> expired after the TTL"),
    Clause("§2.2/failed-error", "resilience", "a failed trace carries its error"),
    Clause("§2.3/status-object", "explain", "the status object has every §2.3 field"),
    Clause("§2.3/unknown", "explain", "an unknown trace id is 404 trace_not_found"),
    Clause("§2.4/complete", "explain", "a complete trace's graph is HIF v1 (200)"),
    Clause("§2.4/not-ready", "explain", "404 graph_not_ready before completion"),
    Clause("§2.4/expired", "explain", "410 trace_expired after the TTL"),
    Clause("§2.4/terminal", "explain", "409 trace_canceled / trace_failed"),
    Clause("§2.4/gzip", "explain", "the graph honours Accept-Encoding: gzip"),
    Clause("§2.5/events", "explain",
           "status_update on each change, then complete or error, then the stream closes"),
    Clause("§2.5/ids", "explain", "every trace stream event has an id"),
    Clause("§2.5/keepalive", "explain", "a keep-alive comment at least every 15 s"),
    Clause("§2.6/register", "security", "registration answers 201 {id, trace_id, url, "
           "events} and never echoes the secret"),
    Clause("§2.6/delivery", "security",
           "delivery POSTs {event_id, event, trace_id, state, ts}, HMAC-signed with a secret"),
    Clause("§2.6/retry", "security", "failed deliveries are retried with backoff under the "
           "same event_id"),
    Clause("§2.6/max-attempts", "security", "delivery gives up after 5 attempts"),
    Clause("§2.6/ssrf", "security", "loopback, private, link-local and metadata URLs are "
           "refused with 422 webhook_url_forbidden"),
    Clause("§2.7/cancel", "explain",
           "DELETE answers 202 canceled and the trace never gets a graph"),
    Clause("§2.7/terminal", "explain", "DELETE of a terminal trace is 409 trace_not_cancelable"),
    Clause("§2.8/replay", "security", "same key, body and tenant replays the first response "
           "(x-idempotent-replay) and opens no trace"),
    Clause("§2.8/reuse", "security", "same key, other body -> 422 idempotency_key_reused"),
    Clause("§2.8/tenant", "security", "another tenant's identical key is independent"),
    Clause("§2.8/key-length", "security", "keys longer than 128 characters are refused"),
    Clause("§2.9/pending", "explain", "202 pending with eta_seconds while not complete"),
    Clause("§2.9/envelope", "explain", "200 with the HIF v2 envelope once complete"),
    Clause("§2.9/not-found", "explain", "unknown or foreign completions are 404 not_found"),
    Clause("§2.10/healthz", "observability", "/healthz is 200 while the process lives"),
    Clause("§2.10/readyz", "observability",
           "/readyz is 200 when ready, 503 not_ready naming a failing dependency"),
    Clause("§2.10/metrics-route", "observability", "GET /metrics serves the exposition"),
    Clause("§2.10/method-not-allowed", "security", "405 with Allow"),
    Clause("§2.11/allowed", "security", "an allow-listed origin is echoed, never *"),
    Clause("§2.11/others", "security", "other origins get no allow headers"),
    Clause("§2.12/sdk-types", "openai", "completions and chunks parse into the official "
           "SDK's types, sync, async and streamed"),
    Clause("§2.12/finish-length", "openai",
           "finish_reason is length when max_tokens cut the answer, streamed or not"),
    Clause("§2.12/n-or-400", "openai",
           "n > 1 gets n choices or a 400, never fewer choices without a word"),
    Clause("§2.12/errors", "openai", "refusals surface as the SDK's error classes with "
           "the error body's code"),
    Clause("§2.12/retry-after", "openai",
           "the SDK's own retry waits out a 429's Retry-After and gets its answer"),
    Clause("§2.12/models", "openai", "GET /v1/models lists the served models, the "
           "target's model among them"),
    Clause("§2.12/n", "openai", "n > 1 answers n choices, indexed 0..n-1"),
    Clause("§2.12/stop", "openai", "a stop sequence ends the answer before it"),
    Clause("§2.12/content-parts", "openai", "content may be an array of text parts"),
    Clause("§2.12/include-usage", "openai",
           "stream_options.include_usage ends the stream with a usage chunk"),
    Clause("§2.12/seed", "openai", "the same seed answers the same text, streamed or not "
           "(a stream's pieces join into exactly the answer)"),
    Clause("§3/unauthorized", "security", "no or malformed bearer -> 401 with WWW-Authenticate"),
    Clause("§3/forbidden", "security", "an unknown token -> 403 forbidden"),
    Clause("§3/scope", "security", "a token without the route's scope -> 403 missing_scope"),
    Clause("§3/isolation", "security",
           "another tenant's trace answers exactly like a missing one, on every trace route"),
    Clause("§3/tenant-from-token", "security", "request headers cannot change the tenant"),
    Clause("§3/query-token", "security", "tokens in query strings are refused (400)"),
    Clause("§3/constant-time", "security", "token comparison is constant-time",
           "not observable reliably from outside over a network"),
    Clause("§3/bucket", "security",
           "a token bucket per (tenant, category) with the declared burst and refill"),
    Clause("§3/rate-limited", "security", "429 rate_limited with an integer Retry-After >= 1"),
    Clause("§3/auth-denied-free", "security", "requests denied by auth spend no tokens"),
    Clause("§3/no-trace-on-429", "security", "a 429 opens no trace"),
    Clause("§4/hif-schema", "explain", "HIF v1 top level, nodes, incidences and meta"),
    Clause("§4/hif-invariants", "explain", "unique ids, no dangling ids, weights and limits, "
           "granularity agrees with the status"),
    Clause("§4/token-outputs", "explain", "token graphs have one output_token per token"),
    Clause("§4/v2-envelope", "explain", "the v2 envelope's nodes and hyperedges"),
    Clause("§5/backpressure", "performance", "backlog-driven levels per granularity, "
           "recorded in status and metrics"),
    Clause("§5/ladder", "performance", "actions in the contract's order; drop only past 1.5x "
           "hard"),
    Clause("§5/chat-lane", "performance", "chats keep answering (>= 99.9 %) under load"),
    Clause("§5/slo", "performance", "explanation p95 <= 2 s sentence, <= 8 s token"),
    Clause("§5/capacity", "performance", "the peak rate holding the limits reaches the "
           "planned rate"),
    Clause("§5/durable-ack", "resilience", "an acknowledged trace survives a restart"),
    Clause("§6/families", "observability", "the gateway's and explainer's families with "
           "their types"),
    Clause("§6/counters", "observability", "counters move by what happened"),
    Clause("§6/exposition", "observability", "exposition rules: _total, HELP/TYPE, +Inf"),
    Clause("§6/bounded-labels", "observability", "no label carries ids, tokens or user text"),
    Clause("§7/status-store", "resilience", "status store records carry their fields"),
    Clause("§7/tenant-immutable", "security", "a record's tenant_id never changes"),
    Clause("§7/artifacts", "resilience", "the artifact named by s3_key exists at the layout"),
    Clause("§7/audit-events", "security", "the events of each request and trace are journaled"),
    Clause("§7/audit-clean", "security", "no token, Authorization value or unscrubbed PII"),
    Clause("§7/chaos-flags", "resilience", "every chaos control flag does what it says"),
    Clause("§7/chaos-lease", "resilience", "an expired flag is disabled"),
    Clause("§8/openapi", "core", "the target's OpenAPI document is valid and only /v1"),
    Clause("§8/chart", "platform", "the chart lints and renders into valid documents"),
    Clause("§8/deployments", "platform",
           "Deployments gateway, explainer and interceptor, with Services"),
    Clause("§8/probes", "platform", "probes hit routes the process really serves"),
    Clause("§8/pdb", "platform", "PodDisruptionBudgets select real pods"),
    Clause("§8/network-policies", "platform", "default-deny NetworkPolicies, explicit allows"),
    Clause("§8/keda", "platform", "a ScaledObject for the explainer on "
           "hypergraph_backlog_seconds, 2..16 at 1.0"),
    Clause("§8/argocd", "platform", "the ArgoCD Application points at the chart"),
    Clause("§8/karpenter", "platform", "CPU and GPU NodePools with their EC2NodeClasses"),
    Clause("§9/control-plane", "core", "the control plane's API, scopes and history",
           _CONTROL_PLANE),
    Clause("§10/restart", "resilience", "SIGKILL of any process loses no acknowledged trace"),
    Clause("§10/dependencies", "resilience", "a dependency down: readyz names it, explain "
           "refused 503 with Retry-After, chats answer"),
    Clause("§10/breaker", "resilience", "the upstream circuit breaker"),
)

CLAUSES: dict[str, Clause] = {clause.id: clause for clause in _ALL}


def unknown_clauses(ids: list[str]) -> list[str]:
    """Clause ids a marker names that the registry does not know (an authoring error)."""
    return [clause for clause in ids if clause not in CLAUSES]
