"""The seed-000 scenario over aiohttp: a chat lane, and an explanation lane for the share
`attach_rate` of chats sent with x-explain-mode (of which `token_mix` at token
granularity). Explanation latency is measured from the chat response to the first
observation of `complete` (status polling at a bounded interval).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

import aiohttp

from .stats import Histograms

CHAT_BODY = {"model": "sidecar-load", "messages": [
    {"role": "user", "content": "Explain how the gateway routes a request."}]}
TERMINAL = frozenset({"complete", "failed", "canceled", "expired"})


@dataclass(frozen=True)
class Scenario:
    url: str
    tokens: tuple[str, ...]  # write tokens, one per tenant, used round-robin
    attach_rate: float = 0.3
    token_mix: float = 0.1
    poll_interval_s: float = 0.1
    explain_deadline_s: float = 30.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("attach_rate", "token_mix"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within 0..1")


class ScenarioClient:
    """Sends the scenario's requests; follows explained ones to their terminal state."""

    def __init__(self, scenario: Scenario, histograms: Histograms) -> None:
        self.scenario, self.histograms = scenario, histograms
        self._rng = random.Random(scenario.seed)
        self._turn = 0
        self._followers: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self.explained = {"sentence": 0, "token": 0}

    async def __aenter__(self) -> ScenarioClient:
        self._session = aiohttp.ClientSession(
            self.scenario.url, connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=self.scenario.explain_deadline_s))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.drain()
        if self._session:
            await self._session.close()

    def _headers(self) -> dict[str, str]:
        token = self.scenario.tokens[self._turn % len(self.scenario.tokens)]
        self._turn += 1
        return {"authorization": f"Bearer {token}"} if token else {}

    async def send(self) -> tuple[str, int | None]:
        """One chat; explained with probability attach_rate. Returns ('chat', status)."""
        assert self._session is not None
        headers = self._headers()
        granularity = None
        if self._rng.random() < self.scenario.attach_rate:
            granularity = "token" if self._rng.random() < self.scenario.token_mix else "sentence"
            headers.update({"x-explain-mode": "hypergraph",
                            "x-explain-granularity": granularity})
        async with self._session.post("/v1/chat/completions", json=CHAT_BODY,
                                      headers=headers) as response:
            body: dict[str, Any] = await response.json() if response.status == 200 else {}
        answered = asyncio.get_running_loop().time()
        meta = body.get("explanation_metadata")
        if granularity and meta:
            self.explained[granularity] += 1
            task = asyncio.create_task(self._follow(meta["trace_id"], granularity, answered,
                                                    headers["authorization"]))
            self._followers.add(task)
            task.add_done_callback(self._followers.discard)
        return "chat", response.status

    async def _follow(self, trace_id: str, granularity: str, since: float,
                      authorization: str) -> None:
        assert self._session is not None
        loop = asyncio.get_running_loop()
        deadline = since + self.scenario.explain_deadline_s
        state, klass = "", "error"
        while loop.time() < deadline:
            try:
                async with self._session.get(f"/v1/traces/{trace_id}/status",
                                             headers={"authorization": authorization}) as r:
                    state = (await r.json()).get("state", "") if r.status == 200 else ""
            except aiohttp.ClientError:
                state = ""
            if state in TERMINAL:
                klass = "2xx" if state == "complete" else "5xx"
                break
            await asyncio.sleep(self.scenario.poll_interval_s)
        self.histograms.record(f"explain:{granularity}", klass, loop.time() - since)

    async def drain(self) -> None:
        if self._followers:
            await asyncio.gather(*self._followers, return_exceptions=True)
