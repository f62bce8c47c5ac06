"""The gateway's own middleware: correlation headers on every response, errors included,
and the JSON 500 for an unexpected exception (CONTRACT §2).

Pure ASGI rather than BaseHTTPMiddleware: it must not buffer SSE streams.
"""

from __future__ import annotations

import logging
import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError

log = logging.getLogger("sidecar.gateway")

_ID = re.compile(rb"^[A-Za-z0-9_-]{1,64}$")


class CorrelationMiddleware:
    def __init__(self, app: ASGIApp, echo: bool = True) -> None:
        self.app, self.echo = app, echo  # §2: a request's own x-trace-id comes back

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        incoming = dict(scope.get("headers", [])).get(b"x-trace-id", b"")

        async def send_with_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                trace_id = scope["state"].get("trace_id")
                if trace_id:
                    value = trace_id.encode()
                elif _ID.match(incoming) and self.echo:
                    # echo only a well-formed id: no header injection
                    value = incoming
                else:
                    value = uuid.uuid4().hex.encode()
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in (b"x-request-id", b"x-trace-id")]
                headers.append((b"x-trace-id", value))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_ids)


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
