"""The trace API (CONTRACT §2.3-2.5, §2.7): status, graph, live stream, cancel."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..auth import READ, WRITE
from ..errors import ApiError
from ..store import TERMINAL
from .requests import fresh, owned, principal, services_of

STATUS_FIELDS = ("trace_id", "state", "progress", "stage", "granularity", "featureset",
                 "created_at", "updated_at", "error", "s3_key", "bp_level", "bp_actions",
                 "granularity_downgraded")


def status_view(record: dict[str, Any]) -> dict[str, Any]:
    """The public status object (§2.3): never the tenant or internal fields."""
    return {name: record.get(name) for name in STATUS_FIELDS}


async def status(request: Request) -> Response:
    services = services_of(request)
    who = principal(request, READ)
    services.metrics.status_read(request.path_params["trace_id"])
    record = await fresh(request, owned(request, request.path_params["trace_id"], who))
    return JSONResponse(status_view(record))


async def graph(request: Request) -> Response:
    services = services_of(request)
    who = principal(request, READ)
    services.metrics.graph_gets.inc()
    trace_id = request.path_params["trace_id"]
    record = await fresh(request, owned(request, trace_id, who))
    state = record["state"]
    if state == "expired":
        raise ApiError(410, "trace_expired", f"trace {trace_id} expired")
    if state in ("failed", "canceled"):
        raise services.policies.graph_of_ended(trace_id, state)
    if state != "complete":
        early = services.policies.graph_before_complete(record)
        if early is None:
            raise ApiError(404, "graph_not_ready", f"trace {trace_id} is {state}")
        return JSONResponse(early)
    try:
        data = await asyncio.to_thread(services.artifacts.get_gzip, record["s3_key"])
    except OSError:
        raise ApiError(503, "artifact_unavailable",
                       "the graph artifact is unavailable") from None
    if "gzip" in request.headers.get("accept-encoding", "") and services.policies.gzip_graph:
        return Response(data, media_type="application/json",
                        headers={"content-encoding": "gzip", "vary": "Accept-Encoding"})
    return Response(gzip.decompress(data), media_type="application/json",
                    headers={"vary": "Accept-Encoding"})


def sse(event_id: int, event: str, data: dict[str, Any]) -> bytes:
    """One Server-Sent Event, with its id (§2.5)."""
    return f"id: {event_id}\nevent: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _final_event(counter: int, record: dict[str, Any]) -> bytes:
    trace_id = record["trace_id"]
    if record["state"] in ("complete", "expired"):
        return sse(counter, "complete", {"trace_id": trace_id})
    return sse(counter, "error", {"trace_id": trace_id, "state": record["state"],
                                  "error": record.get("error")})


async def stream(request: Request) -> Response:
    services = services_of(request)
    who = principal(request, READ)
    trace_id = request.path_params["trace_id"]
    owned(request, trace_id, who)
    queue = services.store.subscribe(trace_id)  # before the first read: no gap
    keepalive_s = services.settings.keepalive_s

    async def events() -> AsyncIterator[bytes]:
        try:
            record = services.store.get(trace_id)
            counter = 0
            while record is not None:
                counter += 1
                yield sse(counter, "status_update", status_view(record))
                if record["state"] in TERMINAL:
                    if services.policies.stream_final_event:
                        yield _final_event(counter + 1, record)
                    return
                record = await _next_record(queue, keepalive_s)
                while record is None:
                    yield b": keep-alive\n\n"
                    record = await _next_record(queue, keepalive_s)
        finally:
            services.store.unsubscribe(trace_id, queue)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"cache-control": "no-store"})


async def _next_record(queue: asyncio.Queue[dict[str, Any]],
                       timeout: float) -> dict[str, Any] | None:
    try:
        return await asyncio.wait_for(queue.get(), timeout=timeout)
    except TimeoutError:
        return None


async def cancel(request: Request) -> Response:
    services = services_of(request)
    who = principal(request, WRITE)
    trace_id = request.path_params["trace_id"]
    owned(request, trace_id, who)
    record = await services.store.transition(trace_id, "canceled", stage="canceled")
    if record is None:
        raise ApiError(409, "trace_not_cancelable", f"trace {trace_id} is already terminal")
    # The explainer sees the state in the database and stops the work.
    return JSONResponse(status_view(record), status_code=202)


ROUTES = [
    Route("/v1/traces/{trace_id}/status", status, methods=["GET"]),
    Route("/v1/traces/{trace_id}/graph", graph, methods=["GET"]),
    Route("/v1/traces/{trace_id}/stream", stream, methods=["GET"]),
    Route("/v1/traces/{trace_id}", cancel, methods=["DELETE"]),
]
