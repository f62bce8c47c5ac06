"""Structured logs: one JSON object per line, every record of the stack.

Access lines carry ts, level, service, request_id, trace_id, tenant_id, path (the route
template, so no id and no query string), status and duration_ms; never a token, a header
value or user text.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ACCESS = logging.getLogger("sidecar.access")
_FIELDS = ("request_id", "trace_id", "tenant_id", "path", "method", "status", "duration_ms",
           "prompt")  # prompt: only ever set by the log-user-text defect


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "service": record.name.split(".")[1]
            if record.name.count(".") else record.name, "message": record.getMessage()}
        for field in _FIELDS:
            if hasattr(record, field):
                line[field] = getattr(record, field)
        if record.exc_info:
            line["error"] = record.exc_info[0].__name__ if record.exc_info[0] else "error"
        return json.dumps(line, separators=(",", ":"))


def configure(log_file: str | None) -> None:
    """All stack logging as JSON lines: to stderr (warnings and up) and, when given, to
    `log_file` (everything, access lines included)."""
    formatter = JsonFormatter()
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(logging.INFO)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.WARNING)
    stderr.setFormatter(formatter)
    root.addHandler(stderr)
    # Library loggers log whole URLs at INFO (a webhook URL may carry a secret in its
    # query string): only their warnings get through.
    for noisy in ("httpx", "httpcore", "uvicorn", "uvicorn.access", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if log_file:
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(formatter)
        root.addHandler(handler)
    else:
        ACCESS.setLevel(logging.WARNING)  # no file: no access lines on stderr


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not ACCESS.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state", {})
                who = state.get("principal")
                ACCESS.info("request", extra={
                    "request_id": state.get("request_id"), "trace_id": state.get("trace_id"),
                    "tenant_id": getattr(who, "tenant_id", None),
                    "path": getattr(scope.get("route"), "path", None) or "unmatched",
                    "method": scope["method"], "status": message["status"],
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    # Set only by a policy no gateway should have (§7: never user text).
                    **({"prompt": state["prompt"]} if state.get("prompt") else {})})
            await send(message)

        await self.app(scope, receive, logged)
