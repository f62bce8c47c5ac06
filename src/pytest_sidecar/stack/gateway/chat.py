"""POST /v1/chat/completions (CONTRACT §2.1, §2.8): the chat lane, and the trace it opens
when asked to explain."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .. import backpressure
from ..audit import snippet
from ..auth import WRITE, Principal
from ..errors import ApiError
from ..idempotency import MAX_KEY_LEN, request_digest
from ..store import TraceExists, rfc3339
from ..text import text_of
from ..upstream import UpstreamError, prompt_of
from .requests import explain_headers, principal, read_json, services_of, validate

# What the gateway forwards: the contract's fields and OpenAI's that §2.12 names.
_UPSTREAM_FIELDS = ("model", "messages", "stream", "temperature", "top_p", "max_tokens",
                    "n", "stop", "stream_options", "seed")


async def open_trace(request: Request, who: Principal, opts: dict[str, Any],
                     completion_id: str | None, model: str) -> tuple[str, backpressure.Plan]:
    """Create the trace's record, durable before the answer leaves (§5, §10)."""
    services = services_of(request)
    refuse_if_unkeepable(services)
    trace_id = opts["trace_id"] or services.policies.new_trace_id()
    now = time.time()
    chosen = services.explainer.plan(opts["granularity"])
    record = {
        "trace_id": trace_id, "tenant_id": who.tenant_id, "state": "queued",
        "progress": 0, "stage": "queued", "granularity": opts["granularity"],
        "featureset": opts["featureset"], "created_at": rfc3339(now),
        "updated_at": rfc3339(now), "expires_at": now + services.settings.ttl_s,
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


def refuse_if_unkeepable(services: Any) -> None:
    """Acknowledged means durable (§10): with the status store or the explainer's queue
    down, nothing is accepted that could not be kept: 503 explain_unavailable."""
    down = next((d for d in services.policies.explain_needs if services.chaos.outage(d)),
                None)
    if down is not None:
        raise ApiError(503, "explain_unavailable", f"explanations are unavailable: the "
                       f"{down.replace('_', ' ')} is down", headers={"Retry-After": "1"})


def upstream_failure(request: Request, exc: UpstreamError) -> ApiError:
    """The chat's answer to a failed upstream call (§2.1, §10)."""
    return services_of(request).policies.upstream_failure(exc)


def job(opts: dict[str, Any], body: dict[str, Any], completion: str,
        chosen: backpressure.Plan) -> dict[str, Any]:
    """The explainer's job for one trace."""
    return {"prompt": prompt_of(body["messages"]), "completion": completion,
            "granularity": chosen.granularity, "featureset": opts["featureset"],
            "model": body["model"], "budget_ms": opts["budget_ms"],
            "work_factor": chosen.work_factor, "bp_actions": list(chosen.actions)}


def check_new_trace_id(request: Request, opts: dict[str, Any]) -> None:
    """A client-chosen trace id that exists already is a 409, never an overwrite."""
    services = services_of(request)
    if opts["explain"] and opts["trace_id"] and services.store.exists(
            opts["trace_id"]) and services.policies.refuse_taken_ids:
        raise ApiError(409, "trace_exists", f"trace {opts['trace_id']} already exists")


async def chat(request: Request) -> Response:
    services = services_of(request)
    who = await _admitted(request)
    opts = explain_headers(request)
    services.metrics.chats.labels(opts["granularity"] if opts["explain"] else "none").inc()
    key = request.headers.get("x-idempotency-key")
    if key is not None and not 0 < len(key) <= MAX_KEY_LEN:
        raise ApiError(400, "invalid_idempotency_key",
                       f"x-idempotency-key must be 1-{MAX_KEY_LEN} characters")
    body = await _valid_body(request)
    if services.upstream is None:
        raise ApiError(503, "upstream_unconfigured", "no upstream LLM is configured")
    if opts["explain"]:
        refuse_if_unkeepable(services)  # before the upstream: a refused chat costs nothing
    if opts["explain"] and (wait := services.explainer.refuse_after(opts["granularity"])):
        # §5: the explanation lane is saturated; refuse explain work, not chats.
        status, code = services.policies.explain_refusal
        raise ApiError(status, code, "the explanation lane is saturated",
                       headers={"Retry-After": str(wait)})
    upstream_body = {k: body[k] for k in _UPSTREAM_FIELDS if k in body}
    if "max_tokens" in upstream_body:
        # JSON Schema counts 1000.0 as an integer; upstreams want 1000.
        upstream_body["max_tokens"] = int(upstream_body["max_tokens"])
    if body.get("stream"):
        if key is not None:
            raise ApiError(422, "invalid_request",
                           "x-idempotency-key cannot be used with stream: true")
        check_new_trace_id(request, opts)
        return await chat_stream(request, who, opts, body, upstream_body)
    if key is None:
        return JSONResponse(await complete(request, who, opts, body, upstream_body))
    return await _idempotent(request, who, key, opts, body, upstream_body)


async def _admitted(request: Request) -> Principal:
    """The caller, past auth and the write rate limit."""
    try:
        return principal(request, WRITE)
    except ApiError as refused:
        if refused.status == 429 and services_of(request).policies.trace_despite_429:
            with contextlib.suppress(ApiError):  # the 429 is what the client gets
                opts = explain_headers(request)
                if opts["explain"]:  # the bug: the trace is recorded before the limiter
                    await open_trace(request, request.state.principal, opts, None, "")
        raise


async def _valid_body(request: Request) -> dict[str, Any]:
    """The chat body, read and validated; the audit snippet is taken on the way."""
    body = await read_json(request)
    if isinstance(body, dict) and isinstance(body.get("messages"), list):
        request.state.snippet = snippet(body["messages"],
                                        services_of(request).policies.scrub_snippet)
        if services_of(request).policies.log_prompt:  # what no gateway should do (§7)
            request.state.prompt = next(
                (text_of(m.get("content"))[:200] for m in body["messages"]
                 if isinstance(m, dict) and m.get("role") == "user"), "")
    validate(body, "ChatCompletionRequest", services_of(request).policies.schema_error_status)
    return dict(body)


async def _idempotent(request: Request, who: Principal, key: str, opts: dict[str, Any],
                      body: dict[str, Any], upstream_body: dict[str, Any]) -> Response:
    """§2.8: the same key and body within the window replay the first answer."""
    async def produce() -> tuple[int, dict[str, Any]]:
        return 200, await complete(request, who, opts, body, upstream_body)

    digest = request_digest(body, {k: v for k, v in opts.items() if v is not None})
    outcome = await services_of(request).idempotency.run(who.tenant_id, key, digest, produce)
    if outcome is None:
        raise ApiError(422, "idempotency_key_reused",
                       "x-idempotency-key was already used for a different request")
    status_code, payload, replayed = outcome
    if payload.get("explanation_metadata"):
        request.state.trace_id = payload["explanation_metadata"]["trace_id"]
    return JSONResponse(payload, status_code=status_code,
                        headers={"x-idempotent-replay": "true"} if replayed else None)


async def complete(request: Request, who: Principal, opts: dict[str, Any],
                   body: dict[str, Any], upstream_body: dict[str, Any]) -> dict[str, Any]:
    """A non-streaming chat, opening a trace when asked; returns the response body."""
    services = services_of(request)
    assert services.upstream is not None
    check_new_trace_id(request, opts)
    try:
        completion = await services.upstream.complete(upstream_body, who.tenant_id)
    except UpstreamError as exc:
        raise upstream_failure(request, exc) from None
    if opts["explain"]:
        # Opened only after the chat succeeded (no orphan traces), durable before 200.
        trace_id, chosen = await open_trace(request, who, opts, completion["id"],
                                            body["model"])
        text = completion["choices"][0]["message"]["content"]
        await services.explainer.submit(trace_id, job(opts, body, text, chosen))
        completion["explanation_metadata"] = {
            "trace_id": trace_id,
            "status": "queued",
            "stream_endpoint": f"/v1/traces/{trace_id}/stream",
            "granularity": opts["granularity"], "featureset": opts["featureset"],
            "estimated_wait": services.explainer.estimated_wait_s(),
        }
    return completion


async def chat_stream(request: Request, who: Principal, opts: dict[str, Any],
                      body: dict[str, Any], upstream_body: dict[str, Any]) -> Response:
    """stream: true: the upstream's chunks relayed as they come; the trace (opened before
    the first chunk) is settled when the stream ends, even if the client has gone."""
    services = services_of(request)
    assert services.upstream is not None
    try:
        upstream = await services.upstream.open_stream(upstream_body, who.tenant_id)
    except UpstreamError as exc:
        raise upstream_failure(request, exc) from None
    trace_id, chosen = None, None
    if opts["explain"]:
        try:
            # The completion id arrives with the first chunk; settle() records it.
            trace_id, chosen = await open_trace(request, who, opts, None, body["model"])
        except ApiError:
            await upstream.aclose()
            raise

    async def settle(finished: bool, text: str, completion_id: str | None) -> None:
        assert trace_id is not None
        if not finished:
            await services.store.transition(trace_id, "failed", error="upstream_error")
            return
        if completion_id:  # canceled mid-stream or not, the answer has its id
            await services.store.update(trace_id, completion_id=completion_id, after_end=True)
        assert chosen is not None
        await services.explainer.submit(trace_id, job(opts, body, text, chosen))

    async def relay() -> AsyncIterator[bytes]:
        parts: list[str] = []
        finished, completion_id = False, None
        try:
            async for line in _lines(upstream, services.policies.cut_stream_line):
                if line.startswith("data: ") and line != "data: [DONE]":
                    chunk = json.loads(line[6:])
                    completion_id = completion_id or chunk.get("id")
                    for choice in chunk.get("choices", []):
                        if choice.get("index", 0) == 0:  # the first choice is explained
                            parts.append(choice.get("delta", {}).get("content") or "")
                finished = finished or line == "data: [DONE]"
                yield (line + "\n").encode()
        finally:
            await upstream.aclose()
            if trace_id is not None:
                # Shielded: the client may have gone, the trace must still be settled.
                await asyncio.shield(settle(finished, "".join(parts), completion_id))

    return StreamingResponse(relay(), media_type="text/event-stream",
                             headers={"cache-control": "no-store"})


async def _lines(upstream: Any, after_cut: str | None) -> AsyncIterator[str]:
    """The upstream's lines. A cut ends the client's stream as an error (§2.1), unless a
    policy papers it over with a last line of its own."""
    try:
        async for line in upstream.aiter_lines():
            yield line
    except Exception:
        if after_cut is None:
            raise
        yield after_cut


ROUTES = [Route("/v1/chat/completions", chat, methods=["POST"])]
