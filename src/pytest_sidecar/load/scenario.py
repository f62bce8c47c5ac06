"""The standard mix over the engine's HTTP/1.1 client (http1.py): a chat lane, and an
explanation lane for the share `attach_rate` of chats sent with x-explain-mode (of which
`token_mix` at token granularity).

Lanes recorded: `chat` (every chat response, from the intended send time, by the open
model); for the share `stream_share` of chats sent with `stream: true`, the metrics LLM
serving benchmarks report, each defined once (STREAM_FORMULAS):
- `ttft`: time to the first chunk with content, from the intended send time;
- `itl`: the gap between consecutive content chunks, one sample per chunk (how many
  tokens a chunk holds is not known without the target's tokenizer; TPOT, from the
  usage chunk's count when there is one, is the per-token figure);
- `tpot`: (E2E - TTFT) / (output tokens - 1), per request with 2 tokens or more;
- `e2e`: time to the stream's end, from the intended send time;
output tokens come from the stream's usage chunk when the target sends one, else from
the number of content chunks (the summary says which). TTFT and E2E are corrected for
coordinated omission as the chat lane is; ITL and TPOT, gaps within one answer, are not.
A streamed request is *good* when it meets every declared limit (`limits`: ttft, tpot,
e2e in ms), as vLLM's bench and GenAI-Perf define goodput.

And `explain:<granularity>` (from the chat response to the first
observation of a terminal state: the `complete` event of the trace's SSE stream when the
target declares `trace_stream`, else status polling every `poll_interval_s`). In the
explanation lanes the status class says how the trace ended: 2xx complete, 5xx failed or
canceled, `error` no terminal state within `explain_deadline_s`.

Requests rotate over the tenants' tokens, and counts are kept per tenant. A 429/503
refusal of an explained chat (CONTRACT §5, explain admission) is counted apart, with
whether it carried a `Retry-After`, so the chat lane's success excludes only those.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..options import default_of
from ..vocabulary.defaults import DEFAULT_MODEL, STREAM_LIMITS
from ..vocabulary.states import GRANULARITIES, TERMINAL
from .http1 import Http1Pool, Response
from .openmodel import MEASURED_FROM
from .stats import Histograms

MESSAGES = [{"role": "user", "content": "Explain how the gateway routes a request."}]


@dataclass(frozen=True)
class Scenario:
    url: str
    tenants: tuple[tuple[str, str], ...]  # (tenant id, write token), used round-robin
    attach_rate: float = default_of("attach_rate")
    token_mix: float = default_of("token_mix")
    stream_share: float = default_of("stream_share")
    follow_sse: bool = True  # the target declares trace_stream
    poll_interval_s: float = 0.1
    explain_deadline_s: float = default_of("trace_deadline")
    seed: int = 0
    model: str = DEFAULT_MODEL  # the model the chats name (the target's)
    limits: tuple[tuple[str, float], ...] = ()  # (ttft|tpot|e2e, ms) a good stream meets
    include_usage: bool = False  # streams ask for the usage chunk (stream_options)

    def __post_init__(self) -> None:
        for name in ("attach_rate", "token_mix", "stream_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within 0..1")
        if not self.tenants:
            raise ValueError("at least one tenant (an empty token means no auth)")
        for name, _ms in self.limits:
            if name not in STREAM_LIMITS:
                raise ValueError(f"limit {name!r}: valid: {', '.join(STREAM_LIMITS)}")


@dataclass
class Tally:
    """What the scenario saw beyond latencies: per tenant and per trace outcome."""

    chats: Counter[str] = field(default_factory=Counter)  # tenant -> chats sent
    explained: Counter[str] = field(default_factory=Counter)  # granularity -> traces opened
    outcomes: Counter[str] = field(default_factory=Counter)  # "<granularity>:<state>"
    degraded: Counter[str] = field(default_factory=Counter)  # granularity -> downgraded/bp
    refused: Counter[str] = field(default_factory=Counter)  # "<status>:<code>"
    refused_without_retry_after: int = 0
    traces: list[tuple[str, str, str]] = field(default_factory=list)  # tenant, id, granularity
    # Streamed chats: streams, output_tokens, tokens_from_usage, tokens_from_chunks, good,
    # and rate_milli (the sum of each stream's tokens/s x 1000): counts, so shards add up.
    streams: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"per_tenant": dict(self.chats), "explained": {
            g: self.explained[g] for g in GRANULARITIES},
            "trace_outcomes": dict(self.outcomes), "degraded": dict(self.degraded),
            "explain_refused": dict(self.refused),
            "explain_refused_without_retry_after": self.refused_without_retry_after,
            "streams": dict(self.streams)}


class ScenarioClient:
    """Sends the scenario's requests; follows explained ones to their terminal state."""

    def __init__(self, scenario: Scenario, histograms: Histograms) -> None:
        self.scenario, self.histograms = scenario, histograms
        self.tally = Tally()
        self._rng = random.Random(scenario.seed)
        self._turn = 0
        self._followers: set[asyncio.Task[None]] = set()
        self._pool: Http1Pool | None = None
        self.started_at: float | None = None

    @property
    def following(self) -> int:
        return len(self._followers)

    async def __aenter__(self) -> ScenarioClient:
        self.started_at = asyncio.get_running_loop().time()
        self._pool = Http1Pool(self.scenario.url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.drain()
        if self._pool:
            await self._pool.close()

    def _caller(self) -> tuple[str, dict[str, str]]:
        tenant, token = self.scenario.tenants[self._turn % len(self.scenario.tenants)]
        self._turn += 1
        return tenant, ({"authorization": f"Bearer {token}"} if token else {})

    def _granularity(self) -> str | None:
        if self._rng.random() >= self.scenario.attach_rate:
            return None
        return "token" if self._rng.random() < self.scenario.token_mix else "sentence"

    async def send(self) -> tuple[str, int | None]:
        """One chat; explained with probability attach_rate. Returns ('chat', status)."""
        assert self._pool is not None
        loop = asyncio.get_running_loop()
        started = MEASURED_FROM.get(loop.time())
        tenant, auth = self._caller()
        self.tally.chats[tenant] += 1
        headers = dict(auth)
        granularity = self._granularity()
        if granularity:
            headers.update({"x-explain-mode": "hypergraph",
                            "x-explain-granularity": granularity})
        stream = self._rng.random() < self.scenario.stream_share
        body: dict[str, Any] = {"model": self.scenario.model, "messages": MESSAGES}
        if stream:
            body["stream"] = True
            if self.scenario.include_usage:
                body["stream_options"] = {"include_usage": True}
        trace_id = None
        async with asyncio.timeout(self.scenario.explain_deadline_s):
            response = await self._pool.request("POST", "/v1/chat/completions",
                                                 headers, json_body=body)
            try:
                if response.status != 200:
                    refusal = await response.read()
                    if granularity and response.status in (429, 503):
                        self._refused(response, _code(refusal))
                elif stream:
                    trace_id = response.headers.get("x-trace-id") if granularity else None
                    await self._read_stream(response, started)
                else:
                    payload: dict[str, Any] = await response.json()
                    trace_id = (payload.get("explanation_metadata") or {}).get("trace_id")
            finally:
                response.close()
        answered = loop.time()
        if granularity and trace_id:
            self.tally.explained[granularity] += 1
            self.tally.traces.append((tenant, trace_id, granularity))
            task = asyncio.create_task(self._follow(trace_id, granularity, answered, auth))
            self._followers.add(task)
            task.add_done_callback(self._followers.discard)
        return "chat", response.status

    def _refused(self, response: Response, code: str) -> None:
        self.tally.refused[f"{response.status}:{code}"] += 1
        if not response.headers.get("retry-after", "").isdigit():
            self.tally.refused_without_retry_after += 1

    async def _read_stream(self, response: Response, started: float) -> None:
        """Read the SSE chunks, timing each content chunk (see the module's formulas)."""
        loop = asyncio.get_running_loop()
        first_at = last_at = None
        chunks, usage_tokens = 0, None
        async for raw in response.lines():
            line = raw.decode().strip()
            if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                continue
            now = loop.time()
            try:
                chunk = json.loads(line[5:])
            except ValueError:
                continue
            usage = chunk.get("usage") if isinstance(chunk, dict) else None
            if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
                usage_tokens = usage["completion_tokens"]
            if not _has_content(chunk):
                continue
            if first_at is None:
                first_at = now
                self.histograms.record("ttft", "2xx", now - started)
            elif last_at is not None:
                self.histograms.record("itl", "2xx", now - last_at)
            last_at = now
            chunks += 1
        self._stream_done(started, first_at, loop.time(), chunks, usage_tokens)

    def _stream_done(self, started: float, first_at: float | None, ended: float,
                     chunks: int, usage_tokens: int | None) -> None:
        """E2E and TPOT of one streamed answer, its tokens, and whether it was good."""
        e2e = ended - started
        self.histograms.record("e2e", "2xx", e2e)
        tokens = usage_tokens if usage_tokens is not None else chunks
        self.streams["streams"] += 1
        self.streams["output_tokens"] += tokens
        self.streams["tokens_from_usage" if usage_tokens is not None
                     else "tokens_from_chunks"] += 1
        if e2e > 0:
            self.streams["rate_milli"] += round(tokens / e2e * 1000)
        measured = {"e2e": e2e}
        if first_at is not None:
            measured["ttft"] = first_at - started
            # A one-token answer has no time between tokens: vLLM's bench counts its TPOT
            # as 0 for goodput, so a TPOT limit cannot fail it; it is not a TPOT sample.
            measured["tpot"] = 0.0
            if tokens > 1:
                measured["tpot"] = (e2e - measured["ttft"]) / (tokens - 1)
                self.histograms.record("tpot", "2xx", measured["tpot"])
        # A stream without content has no TTFT (nor TPOT): it meets no limit on them.
        if all(name in measured and measured[name] * 1000 <= ms
               for name, ms in self.scenario.limits):
            self.streams["good"] += 1

    @property
    def streams(self) -> Counter[str]:
        return self.tally.streams

    async def _follow(self, trace_id: str, granularity: str, since: float,
                      auth: dict[str, str]) -> None:
        loop = asyncio.get_running_loop()
        deadline = since + self.scenario.explain_deadline_s
        status: dict[str, Any] = {}
        if self.scenario.follow_sse:
            status = await self._watch(trace_id, auth, deadline)
        if status.get("state") not in TERMINAL:
            status = await self._poll(trace_id, auth, deadline)
        state = status.get("state", "")
        klass = "error" if state not in TERMINAL else "2xx" if state == "complete" else "5xx"
        self.histograms.record(f"explain:{granularity}", klass, loop.time() - since)
        self.tally.outcomes[f"{granularity}:{state or 'no_terminal_state'}"] += 1
        if status.get("granularity_downgraded") or status.get("bp_level"):
            self.tally.degraded[granularity] += 1

    async def _watch(self, trace_id: str, auth: dict[str, str],
                     deadline: float) -> dict[str, Any]:
        """Follow the trace's SSE stream; the status at the terminal event (or {})."""
        assert self._pool is not None
        status: dict[str, Any] = {}
        event = ""
        try:
            async with asyncio.timeout(_remaining(deadline)):
                response = await self._pool.request("GET", f"/v1/traces/{trace_id}/stream",
                                                    auth)
                try:
                    if response.status != 200:
                        await response.read()  # read whole, the connection is kept
                        return {}
                    async for raw in response.lines():
                        line = raw.decode()
                        if line.startswith("event:"):
                            event = line.partition(":")[2].strip()
                        elif line.startswith("data:") and event == "status_update":
                            status = {**status, **json.loads(line.partition(":")[2])}
                        elif line.startswith("data:") and event in ("complete", "error"):
                            data = json.loads(line.partition(":")[2])
                            state = "complete" if event == "complete" else data.get("state")
                            return {**status, "state": state}
                finally:
                    response.close()
        except (ConnectionError, TimeoutError, ValueError):
            return {}
        return {}

    async def _poll(self, trace_id: str, auth: dict[str, str],
                    deadline: float) -> dict[str, Any]:
        assert self._pool is not None
        loop = asyncio.get_running_loop()
        status: dict[str, Any] = {}
        while loop.time() < deadline:
            try:
                async with asyncio.timeout(_remaining(deadline)):
                    response = await self._pool.request(
                        "GET", f"/v1/traces/{trace_id}/status", auth)
                    try:
                        body = await response.read()  # read whole, the connection is kept
                        if response.status == 200:
                            status = json.loads(body)
                    finally:
                        response.close()
            except (ConnectionError, TimeoutError, ValueError):
                pass
            if status.get("state") in TERMINAL:
                break
            await asyncio.sleep(self.scenario.poll_interval_s)
        return status

    async def drain(self) -> None:
        if self._followers:
            await asyncio.gather(*self._followers, return_exceptions=True)


def _has_content(chunk: Any) -> bool:
    choices = chunk.get("choices") if isinstance(chunk, dict) else None
    return isinstance(choices, list) and any(
        isinstance(c, dict) and (c.get("delta") or {}).get("content") for c in choices)


def _remaining(deadline: float) -> float:
    return max(0.1, deadline - asyncio.get_running_loop().time())


def _code(body: bytes) -> str:
    """The `code` of a JSON error body, or 'unknown'."""
    try:
        found = json.loads(body)
    except ValueError:
        return "unknown"
    return str(found.get("code", "unknown")) if isinstance(found, dict) else "unknown"
