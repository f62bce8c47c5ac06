"""The audit log (CONTRACT §7): JSON Lines, each line on disk before the response leaves.

Every /v1 request gets one line (health and metrics probes do not). Request events:
`chat.submit`, `trace.read`, `trace.cancel`, `webhook.register`, `rbac.deny`,
`rate_limited`, and `http.request` for anything else (Decision: §7 names no event for
reads, yet every request is audited). Lifecycle events come from the status store:
`trace.queued|running|complete|failed|canceled`, and `webhook.delivered` from the
dispatcher. A line never holds an Authorization value, a token, a webhook secret or
user text other than the scrubbed `snippet` (first user message, <= 64 characters).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..contracts.pii import scrub
from .durable import AppendLog
from .store import rfc3339
from .text import text_of

SNIPPET_CHARS = 64
_LIFECYCLE = frozenset({"queued", "running", "complete", "failed", "canceled"})
_EXPLAINER_STATES = frozenset({"running", "complete", "failed"})
_TERMINAL_EVENTS = frozenset({"trace.complete", "trace.failed", "trace.canceled"})
_ROUTE_EVENTS = {
    ("POST", "/v1/chat/completions"): "chat.submit",
    ("GET", "/v1/chat/completions/{completion_id}/explanation"): "trace.read",
    ("GET", "/v1/traces/{trace_id}/status"): "trace.read",
    ("GET", "/v1/traces/{trace_id}/graph"): "trace.read",
    ("GET", "/v1/traces/{trace_id}/stream"): "trace.read",
    ("DELETE", "/v1/traces/{trace_id}"): "trace.cancel",
    ("POST", "/v1/traces/{trace_id}/webhooks"): "webhook.register",
}


def snippet(messages: list[dict[str, Any]],
            clean: Callable[[str], str] = scrub) -> str | None:
    """The first user message, scrubbed (§7) first and cut to 64 characters after."""
    first = next((m.get("content") for m in messages if m.get("role") == "user"), None)
    return clean(text_of(first))[:SNIPPET_CHARS] if isinstance(first, str | list) else None


class Auditor:
    def __init__(self, path: str, extra: Mapping[str, Any] | None = None) -> None:
        self.path = path
        self.extra = dict(extra or {})  # fields a policy adds to every line
        self.log = AppendLog(path)
        self._last_state: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self.log.start()

    async def close(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.log.close()

    async def write(self, event: str, service: str = "gateway", **fields: Any) -> None:
        await self.log.write({"ts": rfc3339(time.time()), "service": service, "event": event,
                              **fields, **self.extra})

    def _spawn(self, event: str, service: str, **fields: Any) -> None:
        task = asyncio.create_task(self.write(event, service, **fields))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def on_change(self, record: dict[str, Any]) -> None:
        """Status-store listener: one line per state a trace enters."""
        state = record["state"]
        if state not in _LIFECYCLE or self._last_state.get(record["trace_id"]) == state:
            return
        self._last_state[record["trace_id"]] = state
        self._spawn(f"trace.{state}", "explainer" if state in _EXPLAINER_STATES else "gateway",
                    tenant_id=record["tenant_id"], trace_id=record["trace_id"],
                    request_id=record.get("request_id"), status=None,
                    reason=record.get("error"))

    def reconcile(self, records: Iterable[dict[str, Any]]) -> int:
        """After a restart: write the terminal line of every ended trace the log does not
        record. A lifecycle line is written beside the status change, not before it, so
        a SIGKILL can land between the two flushes; the status store is the truth and
        the log catches up with it here (CONTRACT §10: nothing acknowledged is lost on
        any channel). Returns how many lines were written."""
        logged: set[str] = set()
        try:
            with open(self.path, encoding="utf-8") as handle:
                for raw in handle:
                    try:
                        line = json.loads(raw)
                    except ValueError:
                        continue  # a line torn by the kill
                    if line.get("event") in _TERMINAL_EVENTS:
                        logged.add(str(line.get("trace_id")))
        except FileNotFoundError:
            pass
        missing = [r for r in records if f"trace.{r['state']}" in _TERMINAL_EVENTS
                   and r["trace_id"] not in logged]
        for record in missing:
            self.on_change(record)
        return len(missing)

    def on_delivered(self, hook: dict[str, Any], record: dict[str, Any]) -> None:
        self._spawn("webhook.delivered", "gateway", tenant_id=hook["tenant_id"],
                    trace_id=hook["trace_id"], request_id=None, status=record["state"],
                    reason=None)


class AuditMiddleware:
    """Writes the request's line when its status is known, before it is sent."""

    def __init__(self, app: ASGIApp, auditor: Auditor, refusals: bool = True) -> None:
        self.app, self.auditor, self.refusals = app, auditor, refusals  # §7: rbac.deny

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/") \
                or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return

        async def audited(message: Message) -> None:
            if message["type"] == "http.response.start" and (
                    self.refusals or message["status"] not in (401, 403)):
                await self.auditor.write(**self._line(scope, message["status"]))
            await send(message)

        await self.app(scope, receive, audited)

    @staticmethod
    def _line(scope: Scope, status: int) -> dict[str, Any]:
        state = scope.get("state", {})
        who = state.get("principal")
        route = getattr(scope.get("route"), "path", None)
        event = _ROUTE_EVENTS.get((scope["method"], route or ""), "http.request")
        if status in (401, 403) and state.get("error_code") in (
                "unauthorized", "forbidden", "missing_scope"):
            event = "rbac.deny"
        elif status == 429:
            event = "rate_limited"
        return {
            "event": event, "tenant_id": getattr(who, "tenant_id", None),
            "trace_id": state.get("trace_id") or scope.get("path_params", {}).get("trace_id"),
            "request_id": state.get("request_id"), "subject": getattr(who, "subject", None),
            "scopes": sorted(getattr(who, "scopes", ())), "path": scope["path"],
            "method": scope["method"], "status": status, "reason": state.get("error_code"),
            "snippet": state.get("snippet"),
        }
