"""Response rewriting: an ASGI middleware that changes what the gateway answers without
any handler knowing, so an allowed variation (stack/variants.py) is one entry that adds
it when the app is built.

A Rewrite may change the headers of every answer, the body of a JSON answer (parsed,
changed, serialized again, with its length fixed) and each line of an event stream. A
compressed body is left alone: the graph's gzip answer must stay the plain one's twin.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# (request path, status, headers) -> None: edit the answer's headers in place.
HeaderEdit = Callable[[str, int, MutableHeaders], None]
# (request path, status, parsed body) -> the body to send instead.
JsonEdit = Callable[[str, int, Any], Any]
# (request path, one line of an event stream, without its newline) -> the line to send.
LineEdit = Callable[[str, str], str]


@dataclass(frozen=True)
class Rewrite:
    """What one variation changes in the gateway's answers."""

    headers: HeaderEdit | None = None
    body: JsonEdit | None = None
    event_line: LineEdit | None = None
    # How a rewritten JSON body is serialized (a variation may order keys its own way).
    dumps: Callable[[Any], str] = json.dumps


class RewriteMiddleware:
    """Apply a Rewrite to every HTTP answer (streamed event streams line by line)."""

    def __init__(self, app: ASGIApp, rewrite: Rewrite) -> None:
        self.app, self.rewrite = app, rewrite

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, rewrite = str(scope.get("path", "")), self.rewrite
        held: dict[str, Any] = {}

        async def rewritten(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(raw=list(message["headers"]))
                status = int(message["status"])
                if rewrite.headers:
                    rewrite.headers(path, status, headers)
                kind = headers.get("content-type", "")
                plain = "content-encoding" not in headers
                held["kind"] = ("json" if plain and rewrite.body and "json" in kind else
                                "events" if rewrite.event_line and "event-stream" in kind
                                else None)
                held["status"], held["headers"] = status, headers
                if held["kind"] != "json":  # a JSON answer waits for its (new) length
                    await send({**message, "headers": headers.raw})
                return
            if message["type"] != "http.response.body" or held.get("kind") is None:
                await send(message)
                return
            if held["kind"] == "events":
                text = message.get("body", b"").decode()
                lines = [rewrite.event_line(path, line) if line else line  # type: ignore[misc]
                         for line in text.split("\n")]
                await send({**message, "body": "\n".join(lines).encode()})
                return
            held["body"] = held.get("body", b"") + message.get("body", b"")
            if message.get("more_body"):
                return
            await send_json(send, path, held, rewrite)

        await self.app(scope, receive, rewritten)


async def send_json(send: Send, path: str, held: dict[str, Any], rewrite: Rewrite) -> None:
    """Send a buffered JSON answer, rewritten (left as it was if it is not JSON)."""
    body: bytes = held["body"]
    try:
        parsed = json.loads(body)
    except ValueError:
        pass
    else:
        edit = rewrite.body
        assert edit is not None  # only JSON answers of a body-rewriting Rewrite are held
        body = rewrite.dumps(edit(path, held["status"], parsed)).encode()
    headers: MutableHeaders = held["headers"]
    headers["content-length"] = str(len(body))
    await send({"type": "http.response.start", "status": held["status"], "headers": headers.raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})
