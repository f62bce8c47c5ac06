"""CORS (CONTRACT §2.11): only allow-listed origins get Access-Control-Allow-Origin,
echoed (never `*`, since credentials are allowed). A preflight from any other origin
gets no allow headers and a JSON 403.

Not Starlette's CORSMiddleware: it answers a refused preflight with a plain-text 400,
and every gateway error must be the contract's JSON body.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .policies import exact_origin

ALLOW_METHODS = b"GET, POST, DELETE"
ALLOW_HEADERS = (b"authorization, content-type, x-explain-mode, x-explain-granularity, "
                 b"x-explain-features, x-explain-budget, x-trace-id, x-idempotency-key")
EXPOSE_HEADERS = b"x-request-id, x-trace-id, x-idempotent-replay, retry-after"


class CorsMiddleware:
    def __init__(self, app: ASGIApp, origins: frozenset[str],
                 allowed: Callable[[bytes, frozenset[bytes]], bool] = exact_origin) -> None:
        self.app, self.origins = app, frozenset(o.encode() for o in origins)
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        origin = headers.get(b"origin")
        allowed = origin is not None and self.allowed(origin, self.origins)
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            await self._preflight(send, origin if allowed else None)
            return

        async def send_with_cors(message: Message) -> None:
            if allowed and message["type"] == "http.response.start":
                assert origin is not None
                message = {**message, "headers": [
                    *message.get("headers", []), (b"access-control-allow-origin", origin),
                    (b"access-control-allow-credentials", b"true"), (b"vary", b"Origin"),
                    (b"access-control-expose-headers", EXPOSE_HEADERS)]}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    @staticmethod
    async def _preflight(send: Send, origin: bytes | None) -> None:
        if origin is None:
            body = json.dumps({"code": "cors_origin_forbidden",
                               "message": "origin not allowed"}).encode()
            headers = [(b"content-type", b"application/json"), (b"vary", b"Origin")]
            status = 403
        else:
            body, status = b"", 204
            headers = [(b"access-control-allow-origin", origin),
                       (b"access-control-allow-credentials", b"true"),
                       (b"access-control-allow-methods", ALLOW_METHODS),
                       (b"access-control-allow-headers", ALLOW_HEADERS),
                       (b"access-control-max-age", b"600"), (b"vary", b"Origin")]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
