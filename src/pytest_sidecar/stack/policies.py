"""The stack's named policies: the choices docs/contract.md leaves to an implementation.

Each field is one seam with the reference behaviour as its default. An allowed variation
(stack/variants.py) substitutes fields when the stack is built; the code that uses a
policy calls it and never asks which variation runs.
"""

from __future__ import annotations

import random
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import ApiError
    from .principal import Principal

MAX_WEBHOOK_ATTEMPTS = 5  # §2.6: at most 5


def exponential(base_s: float, attempt: int) -> float:
    """The wait before retry `attempt` (1, 2, ...): base, 2 x base, 4 x base, ..."""
    return float(base_s * 2 ** (attempt - 1))


def full_jitter(base_s: float, attempt: int) -> float:
    """Exponential backoff with AWS's "full jitter" kept above half the step: the waits
    grow overall, not each one (§2.6 allows it)."""
    step = exponential(base_s, attempt)
    return float(random.uniform(step / 2, step))


def random_hex_id() -> str:
    return uuid.uuid4().hex


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_like_id() -> str:
    """26 Crockford base-32 characters, 130 random bits (a ULID's shape)."""
    return "".join(secrets.choice(_CROCKFORD) for _ in range(26))


def same_graph(graph: dict[str, Any]) -> dict[str, Any]:
    return graph


def exact_origin(origin: bytes, allowed: frozenset[bytes]) -> bool:
    """§2.11: an origin is allowed when it is on the list, exactly."""
    return origin in allowed


def utc_timestamp(epoch_s: float) -> str:
    """§2: an RFC 3339 time in UTC, to the millisecond (the status store's format)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_s)) + \
        f".{int(epoch_s % 1 * 1000):03d}Z"


def registered_events(hook: Mapping[str, Any], state: str) -> bool:
    """§2.6: a hook is told of the events its registration lists."""
    return state in hook["events"]


# -- access control and limits (§3) ---------------------------------------------------
QUERY_TOKEN_NAMES = frozenset({"access_token", "token", "api_key", "apikey", "key"})


def header_credentials(authorization: str | None, query: Mapping[str, str]) -> str | None:
    """§3: credentials come from the Authorization header; in the query string they are
    a 400, whatever else the request carries."""
    if QUERY_TOKEN_NAMES & set(query):
        from .errors import ApiError

        raise ApiError(400, "token_in_query",
                       "credentials in the query string are refused; use Authorization")
    return authorization


def forbidden_token() -> ApiError:
    """§3: a token nobody issued is 403 forbidden."""
    from .errors import ApiError

    return ApiError(403, "forbidden", "unknown token")


def token_tenant(who: Principal, headers: Mapping[str, str]) -> Principal:
    """§3: the tenant comes only from the token; no header changes it."""
    return who


def route_scope(method: str, scope: str) -> str:
    """§3: a route needs its own scope, whatever the method."""
    return scope


def own_bucket(tenant_id: str) -> str:
    """§3: one token bucket per (tenant, category)."""
    return tenant_id


def missing_trace(trace_id: str) -> ApiError:
    """§2.3: an unknown trace id is 404 trace_not_found."""
    from .errors import not_found

    return not_found(trace_id)


def foreign_trace(path: str, method: str, trace_id: str) -> ApiError | None:
    """§3: another tenant's trace answers exactly as a missing one, on every route (None
    would let the request through)."""
    return missing_trace(trace_id)


def past_ttl(record: Mapping[str, Any], now: float) -> bool:
    """§2.2: a complete trace expires once its TTL has passed."""
    return bool(record.get("expires_at", 1e18) <= now)


def ended_trace_graph(trace_id: str, state: str) -> ApiError:
    """§2.4: the graph of a failed or canceled trace is 409 trace_failed|trace_canceled."""
    from .errors import ApiError

    return ApiError(409, f"trace_{state}", f"trace {trace_id} is {state}")


def raw_body(payload: Mapping[str, Any], body: bytes) -> bytes:
    """§2.6: the signature is over the raw body sent."""
    return body


# The forward moves of §2.2: queued -> running -> (partial) -> complete | failed |
# canceled; complete -> expired. A terminal trace never moves again.
FORWARD: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "failed", "canceled"}),
    "running": frozenset({"partial", "complete", "failed", "canceled"}),
    "partial": frozenset({"complete", "failed", "canceled"}),
    "complete": frozenset({"expired"}),
    "failed": frozenset(), "canceled": frozenset(), "expired": frozenset(),
}


def forward_only(before: str, after: str) -> bool:
    """§2.2: states never go backwards; a trace reaches exactly one terminal state."""
    return after in FORWARD.get(before, frozenset())


def whole_record(record: Any) -> Any:
    """§7: a status store record is written whole."""
    return record


def scrub_text(text: str) -> str:
    """§7: user text in the audit log is scrubbed."""
    from ..contracts.pii import scrub

    return scrub(text)


def json_upstream_error(exc: Any) -> ApiError:
    """§2.1: a failed upstream is the contract's JSON error, 502/504, Retry-After kept."""
    from .errors import ApiError

    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return ApiError(exc.status, exc.code, str(exc), headers=headers)


def no_early_graph(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """§2.4: no graph before the trace is complete (404 graph_not_ready)."""
    return None


def every_header(headers: Mapping[str, str]) -> Mapping[str, str]:
    """§2.1: the explain headers are read as the client sent them."""
    return headers


@dataclass(frozen=True)
class Policies:
    """What an implementation may choose; the defaults are the reference stack's."""

    # §2: how the gateway makes a trace id (random, >= 64 bits, never all zeros).
    new_trace_id: Callable[[], str] = random_hex_id
    # §4: the HIF v1 graph as stored and served (optional fields may be left out).
    shape_graph: Callable[[dict[str, Any]], dict[str, Any]] = same_graph
    # §2.6: attempts in all (2-5) and the wait before each retry.
    webhook_attempts: int = MAX_WEBHOOK_ATTEMPTS
    webhook_wait: Callable[[float, int], float] = exponential
    # §2.2, §2.7, §7, §10: the explainer takes jobs, a cancel stops the work before it
    # publishes, the chaos flags' failures are honoured, and no wall-clock job deadline.
    explainer_consumes: bool = True
    cancel_stops_work: bool = True
    honour_fail_attribution: bool = True
    honour_drop_s3: bool = True
    job_deadline_s: float | None = None
    # §2.2 and §7: which moves of a trace's state are allowed, and what of a record the
    # status store writes.
    may_move: Callable[[str, str], bool] = forward_only
    stored_record: Callable[[Any], Any] = whole_record
    # §2.2: the explainer stage at which a trace shows the optional `partial` state.
    partial_at_stage: str | None = None
    # §5: the status and code of an explain refusal when the lane is saturated.
    explain_refusal: tuple[int, str] = (503, "explain_overloaded")
    # §7: fields an audit line carries beyond the contract's.
    audit_extra: Mapping[str, Any] = field(default_factory=dict)
    # §6: families the gateway exposes beyond the contract's: name -> (help, labels).
    extra_metrics: Mapping[str, tuple[str, Mapping[str, str]]] = field(default_factory=dict)
    # §2.11: whether an Origin is on the allow-list.
    origin_allowed: Callable[[bytes, frozenset[bytes]], bool] = exact_origin
    # §2.6: the `ts` of a delivery, and which of a hook's trace's states it is told of.
    webhook_timestamp: Callable[[float], str] = utc_timestamp
    webhook_wants: Callable[[Mapping[str, Any], str], bool] = registered_events
    # §2.6 and §10: what the signature covers, retries keep their event id, registrations
    # are durable.
    signed_bytes: Callable[[Mapping[str, Any], bytes], bytes] = raw_body
    new_event_id_per_retry: bool = False
    durable_webhooks: bool = True
    # §3: where credentials are read from, a request without one, an unknown token.
    credentials: Callable[[str | None, Mapping[str, str]], str | None] = header_credentials
    serve_without_token: bool = False
    unknown_token: Callable[[], ApiError] = forbidden_token
    # §3: the caller's tenant, the scope a route needs, whose bucket a request spends,
    # whether a refused request spends one too, and whether a 429 is counted (§6).
    tenant_of: Callable[[Principal, Mapping[str, str]], Principal] = token_tenant
    scope_of: Callable[[str, str], str] = route_scope
    bucket_of: Callable[[str], str] = own_bucket
    refusals_spend_tokens: bool = False
    count_rate_limited: bool = True
    # §2.3 and §3: the answer for an unknown trace and for another tenant's.
    unknown_trace: Callable[[str], ApiError] = missing_trace
    foreign_trace: Callable[[str, str, str], ApiError | None] = foreign_trace
    # §2.2: whether a complete trace's TTL has passed.
    expired: Callable[[Mapping[str, Any], float], bool] = past_ttl
    # §2.1: the headers the explain options are read from.
    explain_headers: Callable[[Mapping[str, str]], Mapping[str, str]] = every_header
    # §2.1: a body that breaks the schema, a taken client trace id, what a chat logs.
    schema_error_status: int = 422
    refuse_taken_ids: bool = True
    log_prompt: bool = False
    # §2.8: idempotency keys are per tenant, and a key's body is checked.
    idempotency_per_tenant: bool = True
    idempotency_checks_body: bool = True
    # §2.10 and §10: readiness checks the status store; the breaker opens; the upstream
    # timeout is enforced; a job survives a kill; a chaos flag's lease lapses.
    readiness_checks_store: bool = True
    breaker_opens: bool = True
    enforce_upstream_timeout: bool = True
    durable_queue: bool = True
    chaos_leases: bool = True
    # §7: the audit log scrubs its snippet and journals refusals; §2: a request's own
    # x-trace-id is echoed; §2.6: the SSRF guard knows every spelling of an address.
    scrub_snippet: Callable[[str], str] = scrub_text
    audit_refusals: bool = True
    echo_client_trace_ids: bool = True
    ssrf_every_spelling: bool = True
    # §2.1, §2.4, §3, §6: a failed upstream's answer, what ends a cut stream (None: an
    # error), a 429'd chat opens no trace, no graph before completion, no per-trace label.
    upstream_failure: Callable[[Any], ApiError] = json_upstream_error
    cut_stream_line: str | None = None
    trace_despite_429: bool = False
    graph_before_complete: Callable[[Mapping[str, Any]], dict[str, Any] | None] = \
        no_early_graph
    label_reads_by_trace: bool = False
    # §10: the dependencies without which explain requests are refused.
    explain_needs: tuple[str, ...] = ("status_store", "explainer")
    # §2.9: the explanation route asks for a token, and hides other tenants' completions.
    explanation_needs_token: bool = True
    foreign_completions_hidden: bool = True
    # §2.10: /healthz answers while the process lives, whatever readiness says.
    healthz_follows_readiness: bool = False
    # §2.4-2.6 and §6: the graph of an ended trace, gzip, the stream's last event, how a
    # status read is counted, and whether a registration echoes its secret.
    graph_of_ended: Callable[[str, str], ApiError] = ended_trace_graph
    gzip_graph: bool = True
    stream_final_event: bool = True
    status_read_weight: int = 1
    echo_webhook_secret: bool = False
    # §2.1 (the fake upstream): output tokens per streamed chunk, and a final usage chunk.
    tokens_per_chunk: int = 1
    usage_chunk: bool = False
