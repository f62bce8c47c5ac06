"""The gateway: OpenAI-compatible chat plus the trace API (CONTRACT §2), as a Starlette app."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..contracts.openapi import request_validator
from . import backpressure, defects
from .audit import AuditMiddleware, snippet
from .auth import READ, WRITE, Principal
from .cors import CorsMiddleware
from .errors import ApiError, not_found
from .hif_v2 import envelope
from .idempotency import MAX_KEY_LEN, request_digest
from .logs import AccessLogMiddleware
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import MetricsMiddleware
from .middleware import CorrelationMiddleware
from .services import Services
from .ssrf import ForbiddenUrl
from .store import TERMINAL, TraceExists, rfc3339
from .upstream import UpstreamError, prompt_of
from .webhooks import EVENTS

log = logging.getLogger("sidecar.gateway")
TRACE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
FEATURES = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
DEFAULT_FEATURESET = "sae-gpt4-2m"
STATUS_FIELDS = ("trace_id", "state", "progress", "stage", "granularity", "featureset",
                 "created_at", "updated_at", "error", "s3_key", "bp_level", "bp_actions",
                 "granularity_downgraded")


def status_view(record: dict[str, Any]) -> dict[str, Any]:
    """The public status object (§2.3): never the tenant or internal fields."""
    view = {name: record.get(name) for name in STATUS_FIELDS}
    if defects.on("status-without-stage"):
        del view["stage"], view["featureset"]
    if defects.on("status-epoch-timestamps"):
        view["created_at"] = view["updated_at"] = int(time.time())
    return view


def create_gateway(services: Services) -> Starlette:
    """App factory: the gateway bound to one set of stack services."""
    validate_chat = request_validator("ChatCompletionRequest")

    def principal(request: Request, scope: str) -> Principal:
        """Authenticate, check the scope, then take a rate-limit token (in that order:
        a request denied by auth consumes nothing)."""
        try:
            who = services.auth.authenticate(request.headers.get("authorization"),
                                             set(request.query_params.keys()))
            if defects.on("tenant-header-honored") and request.headers.get("x-tenant-id"):
                who = Principal(request.headers["x-tenant-id"], who.scopes, who.subject)
            request.state.principal = who  # for the audit line, even if the scope is missing
            if not (defects.on("read-token-can-cancel") and request.method == "DELETE"):
                services.auth.require(who, scope)
        except ApiError as denied:
            services.metrics.rbac_denied.labels(denied.code).inc()
            if defects.on("denied-requests-spend-tokens") and denied.status == 403:
                services.limiter.check((getattr(request.state, "principal", None) and
                                       request.state.principal.tenant_id) or "anonymous",
                                       "read" if request.method == "GET" else "write")
            raise
        category = "read" if request.method == "GET" else "write"
        # The defect: one bucket per category, sized by whichever tenant used it first.
        shared = defects.on("rate-limit-shared-by-tenants")
        retry_after = services.limiter.check("all" if shared else who.tenant_id, category,
                                             sized_for=who.tenant_id)
        if retry_after is not None:
            if not defects.on("no-rate-limit-counter"):
                services.metrics.rate_limited.labels(category).inc()
            raise ApiError(429, "rate_limited", f"{category} rate limit exceeded",
                           headers={"Retry-After": "0" if defects.on("retry-after-zero")
                                    else str(retry_after)})
        return who

    def owned(request: Request, trace_id: str, who: Principal) -> dict[str, Any]:
        record = services.store.get(trace_id)
        if record is None and defects.on("unknown-trace-500"):
            raise ApiError(500, "internal_error", "trace lookup failed")
        foreign = record is not None and record["tenant_id"] != who.tenant_id
        if foreign and defects.on("foreign-trace-403"):
            raise ApiError(403, "forbidden", "this trace belongs to another tenant")
        tolerated = (defects.on("foreign-status-readable") and request.url.path.endswith(
            "/status")) or (defects.on("foreign-cancel-allowed") and request.method == "DELETE")
        # A foreign trace answers exactly like a missing one (tenant isolation, §3).
        if record is None or (foreign and not tolerated):
            raise not_found(trace_id)
        request.state.trace_id = trace_id  # §2: x-trace-id is the trace, once it exists
        return record

    async def fresh(record: dict[str, Any]) -> dict[str, Any]:
        """Apply a due TTL before answering, so no reader sees a stale 'complete'."""
        if record["state"] == "complete" and record.get("expires_at", 1e18) <= time.time() \
                and not defects.on("ttl-not-enforced"):
            moved = await services.store.transition(record["trace_id"], "expired")
            return moved or record
        return record

    async def read_json(request: Request) -> Any:
        cap = services.settings.max_body_bytes * (64 if defects.on("no-body-cap") else 1)
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

    def explain_headers(request: Request) -> dict[str, Any]:
        headers = request.headers
        mode = headers.get("x-explain-mode", "")
        if defects.on("explain-mode-unchecked"):
            mode = "hypergraph" if mode == "hypergraph" else ""
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
        if budget_raw is not None and not defects.on("budget-unchecked"):
            if not budget_raw.isdigit() or int(budget_raw) < 1:
                raise ApiError(400, "invalid_budget", "x-explain-budget must be an integer >= 1")
            budget = int(budget_raw)
        client_id = None if defects.on("client-trace-id-ignored") else headers.get("x-trace-id")
        if client_id is not None and not TRACE_ID.match(client_id):
            raise ApiError(400, "invalid_trace_id", "x-trace-id must match ^[A-Za-z0-9_-]{1,64}$")
        return {"explain": mode == "hypergraph", "granularity": granularity,
                "featureset": features, "budget_ms": budget, "trace_id": client_id}

    async def open_trace(request: Request, who: Principal, opts: dict[str, Any],
                         completion_id: str | None, model: str
                         ) -> tuple[str, backpressure.Plan]:
        if services.chaos.outage("status_store"):
            # Acknowledged means durable: with no store, no trace is accepted.
            raise ApiError(503, "status_store_unavailable", "the status store is unavailable",
                           headers={"Retry-After": "1"})
        trace_id = opts["trace_id"] or uuid.uuid4().hex
        now = time.time()
        chosen = services.explainer.plan(opts["granularity"])
        record = {
            "trace_id": trace_id, "tenant_id": who.tenant_id, "state": "queued",
            "progress": 0, "stage": "queued", "granularity": opts["granularity"],
            "featureset": opts["featureset"], "created_at": rfc3339(now),
            "updated_at": rfc3339(now), "expires_at": now + services.settings.ttl_seconds,
            "error": None, "s3_key": None, "bp_level": chosen.level,
            "bp_actions": list(chosen.actions), "granularity_downgraded": chosen.downgraded,
            "completion_id": completion_id, "model": model,
            "request_id": request.state.request_id,
        }
        try:
            await services.store.create(record)
        except TraceExists:
            raise ApiError(409, "trace_exists", f"trace {trace_id} already exists") from None
        request.state.trace_id = trace_id
        return trace_id, chosen

    def job(opts: dict[str, Any], body: dict[str, Any], completion: str,
            chosen: backpressure.Plan) -> dict[str, Any]:
        return {"prompt": prompt_of(body["messages"]), "completion": completion,
                "granularity": chosen.granularity, "featureset": opts["featureset"],
                "model": body["model"], "budget_ms": opts["budget_ms"],
                "work_factor": chosen.work_factor}

    async def chat(request: Request) -> Response:
        try:
            who = principal(request, WRITE)
        except ApiError as refused:
            if refused.status == 429 and defects.on("rate-limited-opens-trace"):
                with contextlib.suppress(ApiError):  # the 429 is what the client gets
                    opts = explain_headers(request)
                    if opts["explain"]:  # the bug: the trace is recorded before the limiter
                        await open_trace(request, request.state.principal, opts, None, "")
            raise
        opts = explain_headers(request)
        services.metrics.chats.labels(opts["granularity"] if opts["explain"] else "none").inc()
        key = request.headers.get("x-idempotency-key")
        if key is not None and not 0 < len(key) <= MAX_KEY_LEN:
            raise ApiError(400, "invalid_idempotency_key",
                           f"x-idempotency-key must be 1-{MAX_KEY_LEN} characters")
        body = await read_json(request)
        if isinstance(body, dict) and isinstance(body.get("messages"), list):
            request.state.snippet = snippet(body["messages"])
            if defects.on("log-user-text"):  # the bug: the prompt goes to the access log
                request.state.prompt = next(
                    (str(m.get("content"))[:200] for m in body["messages"]
                     if isinstance(m, dict) and m.get("role") == "user"), "")
        error = next(iter(validate_chat.iter_errors(body)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "body"
            raise ApiError(400 if defects.on("schema-errors-400") else 422, "invalid_request",
                           f"{where}: {error.message}"[:300])
        if services.upstream is None:
            raise ApiError(503, "upstream_unconfigured", "no upstream LLM is configured")
        if opts["explain"] and (wait := services.explainer.refuse_after(opts["granularity"])):
            # §5: the explanation lane is saturated; refuse explain work, not chats.
            raise ApiError(503, "explain_overloaded", "the explanation lane is saturated",
                           headers={"Retry-After": str(wait)})
        upstream_body = {k: body[k] for k in ("model", "messages", "stream", "temperature",
                                              "top_p", "max_tokens") if k in body}
        if "max_tokens" in upstream_body:
            # JSON Schema counts 1000.0 as an integer; upstreams want 1000.
            upstream_body["max_tokens"] = int(upstream_body["max_tokens"])
        if body.get("stream"):
            if key is not None:
                raise ApiError(422, "invalid_request",
                               "x-idempotency-key cannot be used with stream: true")
            check_new_trace_id(opts)
            return await chat_stream(request, who, opts, body, upstream_body)
        if key is None:
            return JSONResponse(await complete(request, who, opts, body, upstream_body))

        async def produce() -> tuple[int, dict[str, Any]]:
            return 200, await complete(request, who, opts, body, upstream_body)

        digest = request_digest(body, {k: v for k, v in opts.items() if v is not None})
        outcome = await services.idempotency.run(who.tenant_id, key, digest, produce)
        if outcome is None:
            raise ApiError(422, "idempotency_key_reused",
                           "x-idempotency-key was already used for a different request")
        status_code, payload, replayed = outcome
        if payload.get("explanation_metadata"):
            request.state.trace_id = payload["explanation_metadata"]["trace_id"]
        return JSONResponse(payload, status_code=status_code,
                            headers={"x-idempotent-replay": "true"} if replayed else None)

    def check_new_trace_id(opts: dict[str, Any]) -> None:
        if opts["explain"] and opts["trace_id"] and services.store.exists(opts["trace_id"]) \
                and not defects.on("client-trace-id-overwrites"):
            raise ApiError(409, "trace_exists", f"trace {opts['trace_id']} already exists")

    async def complete(request: Request, who: Principal, opts: dict[str, Any],
                       body: dict[str, Any], upstream_body: dict[str, Any]) -> dict[str, Any]:
        """A non-streaming chat, opening a trace when asked; returns the response body."""
        assert services.upstream is not None
        check_new_trace_id(opts)
        try:
            completion = await services.upstream.complete(upstream_body)
        except UpstreamError as exc:
            raise ApiError(exc.status, exc.code, str(exc)) from None
        if opts["explain"]:
            # Opened only after the chat succeeded (no orphan traces), durable before 200.
            trace_id, chosen = await open_trace(request, who, opts, completion["id"],
                                                body["model"])
            text = completion["choices"][0]["message"]["content"]
            await services.explainer.submit(trace_id, job(opts, body, text, chosen))
            if defects.on("no-explanation-metadata"):
                return completion
            completion["explanation_metadata"] = {
                "trace_id": trace_id,
                "status": "pending" if defects.on("metadata-status-pending") else "queued",
                "stream_endpoint": f"/v1/traces/{trace_id}/stream",
                "granularity": opts["granularity"], "featureset": opts["featureset"],
                "estimated_wait": services.explainer.estimated_wait_s(),
            }
        return completion

    async def chat_stream(request: Request, who: Principal, opts: dict[str, Any],
                          body: dict[str, Any], upstream_body: dict[str, Any]) -> Response:
        assert services.upstream is not None
        try:
            upstream = await services.upstream.open_stream(upstream_body)
        except UpstreamError as exc:
            raise ApiError(exc.status, exc.code, str(exc)) from None
        trace_id, chosen = None, None
        if opts["explain"]:
            try:
                # The completion id arrives with the first chunk; settle() records it.
                trace_id, chosen = await open_trace(request, who, opts, None, body["model"])
            except ApiError:
                await upstream.aclose()
                raise

        async def relay() -> AsyncIterator[bytes]:
            parts: list[str] = []
            finished, completion_id = False, None
            try:
                async for line in upstream.aiter_lines():
                    if line.startswith("data: ") and line != "data: [DONE]":
                        chunk = json.loads(line[6:])
                        completion_id = completion_id or chunk.get("id")
                        for choice in chunk.get("choices", []):
                            parts.append(choice.get("delta", {}).get("content") or "")
                    finished = finished or line == "data: [DONE]"
                    if line == "data: [DONE]" and defects.on("stream-without-done"):
                        continue
                    yield (line + "\n").encode()
            finally:
                await upstream.aclose()
                if trace_id is not None:
                    # Shielded: the client may have gone, the trace must still be settled.
                    await asyncio.shield(settle(trace_id, finished, "".join(parts),
                                                completion_id))

        async def settle(trace_id: str, finished: bool, text: str,
                         completion_id: str | None) -> None:
            if finished:
                if completion_id:
                    await services.store.update(trace_id, completion_id=completion_id)
                assert chosen is not None
                await services.explainer.submit(trace_id, job(opts, body, text, chosen))
            else:
                await services.store.transition(trace_id, "failed", error="upstream_error")

        return StreamingResponse(relay(), media_type="text/event-stream",
                                 headers={"cache-control": "no-store"})

    async def status(request: Request) -> Response:
        who = principal(request, READ)
        services.metrics.status_gets.inc(2 if defects.on("status-get-counted-twice") else 1)
        if defects.on("metrics-trace-id-label"):
            services.metrics.status_reads_by_trace.labels(
                request.path_params["trace_id"][:64]).inc()
        record = await fresh(owned(request, request.path_params["trace_id"], who))
        return JSONResponse(status_view(record))

    async def graph(request: Request) -> Response:
        who = principal(request, READ)
        services.metrics.graph_gets.inc()
        trace_id = request.path_params["trace_id"]
        record = await fresh(owned(request, trace_id, who))
        state = record["state"]
        if state == "expired":
            raise ApiError(410, "trace_expired", f"trace {trace_id} expired")
        if state in ("failed", "canceled") and not defects.on("canceled-graph-404"):
            raise ApiError(409, f"trace_{state}", f"trace {trace_id} is {state}")
        if state != "complete" and not (defects.on("graph-before-complete")
                                         and state in ("running", "partial")):
            raise ApiError(404, "graph_not_ready", f"trace {trace_id} is {state}")
        if state != "complete":  # only with graph-before-complete: a made-up partial graph
            return JSONResponse({"network-type": "directed", "nodes": [], "incidences": [],
                                 "meta": {"version": "hif-1"}})
        try:
            data = await asyncio.to_thread(services.artifacts.get_gzip, record["s3_key"])
        except OSError:
            raise ApiError(503, "artifact_unavailable",
                           "the graph artifact is unavailable") from None
        if "gzip" in request.headers.get("accept-encoding", "") \
                and not defects.on("graph-ignores-gzip"):
            return Response(data, media_type="application/json",
                            headers={"content-encoding": "gzip", "vary": "Accept-Encoding"})
        return Response(gzip.decompress(data), media_type="application/json",
                        headers={"vary": "Accept-Encoding"})

    async def stream(request: Request) -> Response:
        who = principal(request, READ)
        trace_id = request.path_params["trace_id"]
        owned(request, trace_id, who)
        queue = services.store.subscribe(trace_id)  # before the first read: no gap

        async def events() -> AsyncIterator[bytes]:
            try:
                record = services.store.get(trace_id)
                counter = 0
                while record is not None:
                    counter += 1
                    yield sse(counter, "status_update", status_view(record))
                    if record["state"] in TERMINAL:
                        counter += 1
                        if defects.on("sse-no-terminal-event"):
                            return
                        if record["state"] in ("complete", "expired"):
                            yield sse(counter, "complete", {"trace_id": trace_id})
                        else:
                            yield sse(counter, "error", {"trace_id": trace_id,
                                                         "state": record["state"],
                                                         "error": record.get("error")})
                        return
                    record = await next_record(queue)
                    while record is None:
                        yield b": keep-alive\n\n"
                        record = await next_record(queue)
            finally:
                services.store.unsubscribe(trace_id, queue)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"cache-control": "no-store"})

    async def next_record(queue: asyncio.Queue[dict[str, Any]]) -> dict[str, Any] | None:
        try:
            return await asyncio.wait_for(queue.get(), timeout=services.settings.keepalive_s)
        except TimeoutError:
            return None

    async def explanation(request: Request) -> Response:
        """§2.9: the HIF v2 envelope of a completion's explanation."""
        who = None if defects.on("explanation-route-unauthenticated") else principal(
            request, READ)
        completion_id = request.path_params["completion_id"]
        trace_id = services.store.trace_of_completion(completion_id)
        record = services.store.get(trace_id) if trace_id else None
        foreign = who is not None and record is not None and record["tenant_id"] != who.tenant_id
        if record is None or (foreign and not defects.on("v2-foreign-completion")):
            raise ApiError(404, "not_found", f"no explanation for {completion_id}")
        record = await fresh(record)
        if record["state"] in ("queued", "running", "partial"):
            return JSONResponse({"id": completion_id, "status": "pending",
                                 "eta_seconds": services.explainer.estimated_wait_s()},
                                status_code=202)
        if record["state"] != "complete":
            raise ApiError(404, "not_found",
                           f"no explanation for {completion_id}: trace {record['state']}")
        data = await asyncio.to_thread(services.artifacts.get_gzip, record["s3_key"])
        graph = json.loads(gzip.decompress(data))
        return JSONResponse(envelope(completion_id, record.get("model", ""),
                                     record["updated_at"], graph))

    validate_webhook = request_validator("WebhookRequest")

    async def webhooks(request: Request) -> Response:
        who = principal(request, WRITE)
        record = owned(request, request.path_params["trace_id"], who)
        body = await read_json(request)
        error = next(iter(validate_webhook.iter_errors(body)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "body"
            raise ApiError(422, "invalid_request", f"{where}: {error.message}"[:300])
        events = list(dict.fromkeys(body.get("events") or EVENTS))
        try:
            hook = await services.webhooks.register(record, body["url"], body.get("secret"),
                                                    events)
        except ForbiddenUrl as exc:
            raise ApiError(422, "webhook_url_forbidden", f"webhook URL refused: {exc}") from None
        if defects.on("webhook-secret-echoed"):
            hook = {**hook, "secret": body.get("secret")}
        return JSONResponse(hook, status_code=201)

    async def cancel(request: Request) -> Response:
        who = principal(request, WRITE)
        trace_id = request.path_params["trace_id"]
        owned(request, trace_id, who)
        record = await services.store.transition(trace_id, "canceled", stage="canceled")
        if record is None:
            raise ApiError(409, "trace_not_cancelable", f"trace {trace_id} is already terminal")
        services.explainer.cancel(trace_id)
        return JSONResponse(status_view(record), status_code=202)

    async def metrics(request: Request) -> Response:
        return Response(services.metrics.exposition(), media_type=METRICS_CONTENT_TYPE)

    async def healthz(request: Request) -> Response:
        if defects.on("healthz-follows-readiness") and not all(
                (await services.readiness()).values()):
            return JSONResponse({"status": "degraded"}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        checks = await services.readiness()
        failing = [name for name, ok in checks.items() if not ok]
        if failing:
            raise ApiError(503, "not_ready", f"not ready: {', '.join(failing)} unavailable",
                           details={"checks": checks, "failing": failing})
        return JSONResponse({"status": "ready", "checks": checks})

    routes = [
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/chat/completions/{completion_id}/explanation", explanation, methods=["GET"]),
        Route("/v1/traces/{trace_id}/status", status, methods=["GET"]),
        Route("/v1/traces/{trace_id}/graph", graph, methods=["GET"]),
        Route("/v1/traces/{trace_id}/stream", stream, methods=["GET"]),
        Route("/v1/traces/{trace_id}/webhooks", webhooks, methods=["POST"]),
        Route("/v1/traces/{trace_id}", cancel, methods=["DELETE"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={
        ApiError: _api_error, HTTPException: _http_error})
    # Innermost: an unexpected exception becomes the contract's JSON 500 here, inside the
    # correlation, CORS and audit layers, so even that answer carries its ids (§2).
    app.add_middleware(InternalErrorMiddleware)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(AuditMiddleware, auditor=services.auditor)
    app.add_middleware(MetricsMiddleware, metrics=services.metrics)
    app.add_middleware(CorsMiddleware, origins=services.settings.cors_origins)
    app.add_middleware(CorrelationMiddleware)  # outermost: preflights get ids too
    return app


def create_explainer_app(services: Services) -> Starlette:
    """The explainer's own HTTP surface (its own port): /metrics and /healthz."""

    async def metrics(request: Request) -> Response:
        return Response(services.explainer.metrics.exposition(),
                        media_type=METRICS_CONTENT_TYPE)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok" if services.explainer.consuming() else "stalled"},
                            status_code=200 if services.explainer.consuming() else 503)

    return Starlette(routes=[Route("/metrics", metrics, methods=["GET"]),
                             Route("/healthz", healthz, methods=["GET"])])


def sse(event_id: int, event: str, data: dict[str, Any]) -> bytes:
    ident = "" if defects.on("sse-no-event-ids") else f"id: {event_id}\n"
    return f"{ident}event: {event}\ndata: {json.dumps(data)}\n\n".encode()


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    request.state.error_code = exc.code  # the audit line's reason
    return exc.response()


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    request.state.error_code = code
    message = {404: "no such route", 405: "method not allowed"}.get(exc.status_code, "error")
    headers = exc.headers
    if defects.on("405-without-allow") and headers:
        headers = {k: v for k, v in headers.items() if k.lower() != "allow"}
    return ApiError(exc.status_code, code, message, headers=headers).response()


class InternalErrorMiddleware:
    """Turns an unexpected exception into the JSON 500 of §2; the body never carries the
    exception, so no traces, paths or versions leak. (Starlette's own handler for
    Exception runs outside every middleware: its 500 would lack the correlation ids.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            log.exception("unhandled error on %s", scope.get("path"))
            if started:
                raise  # the answer has begun: nothing to replace
            scope.setdefault("state", {})["error_code"] = "internal_error"
            await ApiError(500, "internal_error", "internal error").response()(
                scope, receive, send)
