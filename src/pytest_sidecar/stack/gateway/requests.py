"""What every gateway endpoint does with a request before its own work: find the stack's
services, authenticate and rate-limit (in that order), read and validate the body, parse
the explain headers, and look a trace up with tenant isolation (CONTRACT §2, §3)."""

from __future__ import annotations

import functools
import json
import re
import time
from typing import Any

from starlette.requests import Request

from ...contracts.openapi import request_validator
from ..auth import Principal
from ..errors import ApiError
from ..services import GatewayServices

TRACE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
FEATURES = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
DEFAULT_FEATURESET = "sae-gpt4-2m"


def services_of(request: Request) -> GatewayServices:
    """The stack's services, shared by every endpoint through the app's state."""
    services: GatewayServices = request.app.state.services
    return services


def principal(request: Request, scope: str) -> Principal:
    """Authenticate, check the scope, then take a rate-limit token (in that order: a
    request denied by auth consumes nothing)."""
    services, policies = services_of(request), services_of(request).policies
    category = "read" if request.method == "GET" else "write"
    try:
        who = services.auth.authenticate(request.headers.get("authorization"),
                                         request.query_params)
        who = policies.tenant_of(who, request.headers)
        request.state.principal = who  # for the audit line, even if the scope is missing
        services.auth.require(who, policies.scope_of(request.method, scope))
    except ApiError as denied:
        services.metrics.rbac_denied.labels(denied.code).inc()
        known = getattr(request.state, "principal", None)
        if policies.refusals_spend_tokens and denied.status == 403:
            services.limiter.check(known.tenant_id if known else "anonymous", category)
        raise
    _rate_limit_spike(request, who)
    retry_after = services.limiter.check(policies.bucket_of(who.tenant_id), category,
                                         sized_for=who.tenant_id)
    if retry_after is not None:
        if policies.count_rate_limited:
            services.metrics.rate_limited.labels(category).inc()
        raise ApiError(429, "rate_limited", f"{category} rate limit exceeded",
                       headers={"Retry-After": str(retry_after)})
    return who


def _rate_limit_spike(request: Request, who: Principal) -> None:
    """Chaos `rate-limit-spike {severity}` (§7): 429 rate_limited with Retry-After, on
    explain requests only (soft) or on every /v1 request (hard)."""
    services = services_of(request)
    spike = services.chaos.hits("rate-limit-spike", who.tenant_id)
    if spike is None:
        return
    explain = request.headers.get("x-explain-mode", "").lower() == "hypergraph"
    if spike.get("severity", "soft") == "hard" or explain:
        services.metrics.rate_limited.labels(
            "read" if request.method == "GET" else "write").inc()
        raise ApiError(429, "rate_limited", "rate limit exceeded (a traffic spike)",
                       headers={"Retry-After": "1"})


def owned(request: Request, trace_id: str, who: Principal) -> dict[str, Any]:
    """The trace's record, if it is the caller's tenant's; a foreign trace answers
    exactly like a missing one (tenant isolation, §3)."""
    services = services_of(request)
    record = services.store.get(trace_id)
    if record is None:
        raise services.policies.unknown_trace(trace_id)
    if record["tenant_id"] != who.tenant_id:
        refusal = services.policies.foreign_trace(request.url.path, request.method, trace_id)
        if refusal is not None:
            raise refusal
    request.state.trace_id = trace_id  # §2: x-trace-id is the trace, once it exists
    return record


async def fresh(request: Request, record: dict[str, Any]) -> dict[str, Any]:
    """Apply a due TTL before answering, so no reader sees a stale 'complete'."""
    if record["state"] == "complete" and services_of(request).policies.expired(record,
                                                                                time.time()):
        moved = await services_of(request).store.transition(record["trace_id"], "expired")
        return moved or record
    return record


async def read_json(request: Request) -> Any:
    """The body as JSON: 413 past the size cap (declared or streamed), 400 if malformed."""
    cap = services_of(request).settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise ApiError(413, "payload_too_large", f"request body over {cap} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise ApiError(413, "payload_too_large", f"request body over {cap} bytes")
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "request body is not valid JSON") from None


@functools.cache
def _validator(schema: str) -> Any:
    return request_validator(schema)


def validate(body: Any, schema: str, status: int = 422) -> None:
    """The body against one schema of the served OpenAPI document: the first error as
    422 invalid_request, naming where it is."""
    error = next(iter(_validator(schema).iter_errors(body)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "body"
        raise ApiError(status, "invalid_request", f"{where}: {error.message}"[:300])


def explain_headers(request: Request) -> dict[str, Any]:
    """The x-explain-* and x-trace-id headers of a chat (§2.1), checked."""
    headers = services_of(request).policies.explain_headers(request.headers)
    mode = headers.get("x-explain-mode", "")
    if mode not in ("", "hypergraph"):
        raise ApiError(400, "invalid_explain_mode", "x-explain-mode must be 'hypergraph'")
    granularity = headers.get("x-explain-granularity") or "sentence"
    if granularity not in ("sentence", "token"):
        raise ApiError(400, "invalid_granularity",
                       "x-explain-granularity must be 'sentence' or 'token'")
    features = headers.get("x-explain-features") or DEFAULT_FEATURESET
    if not FEATURES.match(features):
        raise ApiError(400, "invalid_features", "x-explain-features is not a feature set name")
    budget_raw = headers.get("x-explain-budget")
    budget = None
    if budget_raw is not None:
        if not budget_raw.isdigit() or int(budget_raw) < 1:
            raise ApiError(400, "invalid_budget", "x-explain-budget must be an integer >= 1")
        budget = int(budget_raw)
    client_id = headers.get("x-trace-id")
    if client_id is not None and not TRACE_ID.match(client_id):
        raise ApiError(400, "invalid_trace_id", "x-trace-id must match ^[A-Za-z0-9_-]{1,64}$")
    return {"explain": mode == "hypergraph", "granularity": granularity,
            "featureset": features, "budget_ms": budget, "trace_id": client_id}
