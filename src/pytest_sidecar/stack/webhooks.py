"""Webhooks (CONTRACT §2.6): at-least-once delivery of a trace's terminal event.

Each delivery is a POST of `{event_id, event, trace_id, state, ts}`, signed with
`x-sidecar-signature: sha256=<HMAC-SHA256(secret, raw body)>` when a secret was given,
retried with exponential backoff (at most 5 attempts) under the same event_id. The URL
is checked against the SSRF guard at registration and again before every attempt;
redirects are never followed (a redirect is an SSRF detour).

At-least-once across restarts (§10): a delivery is marked in the hooks' database
(records_db.py: a row per hook, so a registration costs the same with 10 hooks as with
10,000) once the receiver took it; a hook whose trace reached one of its events with no
delivery marked is delivered again when the gateway starts. The event_id is derived from
the hook and the state, so a redelivery after a SIGKILL carries the same id as the
attempt it repeats.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from .policies import Policies
from .records_db import RecordsDb
from .ssrf import ForbiddenUrl, check_url
from .store import StatusStore

log = logging.getLogger("sidecar.webhooks")
EVENTS = ("complete", "failed", "canceled")
MAX_ATTEMPTS = 5


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def event_id(hook_id: str, state: str) -> str:
    """One id per (hook, transition), the same in every attempt and every process."""
    return "evt_" + hashlib.sha256(f"{hook_id}:{state}".encode()).hexdigest()[:32]


class WebhookDispatcher:
    def __init__(self, path: str, store: StatusStore, allow_hosts: frozenset[str],
                 backoff_s: float, policies: Policies | None = None) -> None:
        self.store, self.allow_hosts, self.backoff_s = store, allow_hosts, backoff_s
        self.policies = policies or Policies()
        self._hooks: dict[str, dict[str, Any]] = {}  # hook id -> registration
        # trace id -> its hooks' ids: a status change looks up its trace's hooks, not all
        self._by_trace: dict[str, list[str]] = {}
        self._db = RecordsDb(path, lambda: self._hooks)
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self.delivered = 0
        self.on_delivered: Callable[[dict[str, Any], dict[str, Any]], None] | None = None

    def load(self) -> None:
        if self.policies.durable_webhooks:  # §10: registrations survive a restart
            self._hooks = self._db.read() or self._legacy()
        for hook_id, hook in self._hooks.items():
            self._by_trace.setdefault(hook["trace_id"], []).append(hook_id)

    def _legacy(self) -> dict[str, dict[str, Any]]:
        """Registrations a state directory kept in `webhooks.json` (before they moved to
        the database), moved into it; {} when there is none."""
        legacy = os.path.join(os.path.dirname(self._db.path), "webhooks.json")
        try:
            with open(legacy, encoding="utf-8") as handle:
                hooks: dict[str, dict[str, Any]] = json.load(handle)
        except (FileNotFoundError, ValueError):
            return {}
        self._db.import_records(hooks)
        return hooks

    def start(self) -> None:
        self._db.start()
        self._client = httpx.AsyncClient(timeout=5.0, follow_redirects=False)
        self.store.add_listener(self._on_change)
        self._redeliver()

    def _redeliver(self) -> None:
        """Deliver what a killed process left undelivered: hooks whose trace already
        reached one of their events, with no delivery marked."""
        for hook in list(self._hooks.values()):
            record = self.store.get(hook["trace_id"])
            if record and self.policies.webhook_wants(hook, record["state"]) \
                    and not hook.get("delivered"):
                self._spawn(hook, record)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._db.close()
        if self._client:
            await self._client.aclose()

    async def register(self, record: dict[str, Any], url: str, secret: str | None,
                       events: list[str]) -> dict[str, Any]:
        """Check and store a webhook (raises ForbiddenUrl); fires at once if the trace
        already reached one of its events."""
        await check_url(url, self.allow_hosts,
                        every_spelling=self.policies.ssrf_every_spelling)
        hook = {"id": "wh_" + uuid.uuid4().hex, "trace_id": record["trace_id"],
                "tenant_id": record["tenant_id"], "url": url, "secret": secret,
                "events": events}
        self._hooks[hook["id"]] = hook
        self._by_trace.setdefault(hook["trace_id"], []).append(hook["id"])
        await self._db.commit_record(hook["id"])
        current = self.store.get(record["trace_id"])
        if current and self.policies.webhook_wants(hook, current["state"]):
            self._spawn(hook, current)
        return {k: hook[k] for k in ("id", "trace_id", "url", "events")}

    def _on_change(self, record: dict[str, Any]) -> None:
        if record["state"] not in EVENTS:
            return
        for hook_id in self._by_trace.get(record["trace_id"], ()):
            hook = self._hooks[hook_id]
            if self.policies.webhook_wants(hook, record["state"]):
                self._spawn(hook, record)

    def _spawn(self, hook: dict[str, Any], record: dict[str, Any]) -> None:
        task = asyncio.create_task(self._deliver(hook, record))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, hook: dict[str, Any], record: dict[str, Any]) -> None:
        assert self._client is not None
        payload = {"event_id": event_id(hook["id"], record["state"]), "event": record["state"],
                   "trace_id": record["trace_id"], "state": record["state"],
                   "ts": self.policies.webhook_timestamp(time.time())}
        body = json.dumps(payload).encode()
        headers = {"content-type": "application/json"}
        if hook["secret"]:
            signed = self.policies.signed_bytes(payload, body)
            headers["x-sidecar-signature"] = signature(hook["secret"], signed)
        attempts = self.policies.webhook_attempts
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(self.policies.webhook_wait(self.backoff_s, attempt))
                if self.policies.new_event_id_per_retry:  # §2.6 wants the same id
                    payload["event_id"] = "evt_" + uuid.uuid4().hex
                    body = json.dumps(payload).encode()
                    if hook["secret"]:
                        headers["x-sidecar-signature"] = signature(hook["secret"], body)
            try:
                # DNS may have changed since the registration: checked again.
                await check_url(hook["url"], self.allow_hosts,
                                every_spelling=self.policies.ssrf_every_spelling)
            except ForbiddenUrl as exc:
                log.warning("webhook %s not delivered: %s", hook["id"], exc)
                return
            try:
                response = await self._client.post(hook["url"], content=body, headers=headers)
                if 200 <= response.status_code < 300:
                    self.delivered += 1
                    hook["delivered"] = record["state"]
                    await self._db.commit_record(hook["id"])
                    if self.on_delivered:
                        self.on_delivered(hook, record)
                    return
            except httpx.HTTPError:
                pass
        log.warning("webhook %s gave up after %d attempts", hook["id"], attempts)
