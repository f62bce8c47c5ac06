"""The upstream LLM: a deterministic OpenAI-compatible fake, and the gateway's client.

The fake is a real HTTP server on its own loopback port, so the gateway's upstream hop
is the same code path as with a real LLM behind `LLM_PROXY_URL`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .breaker import Breaker
from .chaos import ChaosControl
from .exceptions import StackError
from .metrics import GatewayMetrics
from .text import cut_at_stop, deltas, fake_completion, text_of, tokenize


class UpstreamError(StackError):
    """The upstream failed; `status` is what the gateway answers (502, 503 or 504).
    `breaker_failure`: whether it counts toward opening the circuit breaker (5xx,
    timeouts, connect errors do; a 4xx answer does not)."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None,
                 breaker_failure: bool = True) -> None:
        super().__init__(message)
        self.status, self.code, self.retry_after = status, code, retry_after
        self.breaker_failure = breaker_failure


def prompt_of(messages: list[dict[str, Any]]) -> str:
    """The last user message's text (the last message's when no user spoke)."""
    users = [m.get("content", "") for m in messages if m.get("role") == "user"]
    return text_of(users[-1] if users else messages[-1].get("content", ""))


def _count(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


EXTRA_CHOICE_TOKENS = 16  # the longest a choice after the first is


def answers(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(text, finish_reason) of each of the `n` choices the fake gives for a request. A
    fake model with `max_tokens` writes until the cap, so its answer is cut: `length`;
    a stop sequence ends it first: `stop`, the sequence itself left out."""
    model = str(body.get("model", "fake-gpt"))
    prompt = prompt_of(body.get("messages") or [{"content": ""}])
    max_tokens = _count(body.get("max_tokens"))
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else [str(s) for s in stop or ()]
    found = []
    choices = max(1, _count(body.get("n")) or 1)
    for index in range(choices):
        # Choice 0 is the answer a plain request gets; each further choice its own, and
        # short: a fake that wrote n x max_tokens tokens would spend seconds on n=128.
        cap = max_tokens if index == 0 else min(max_tokens or EXTRA_CHOICE_TOKENS,
                                                EXTRA_CHOICE_TOKENS)
        text = fake_completion(prompt, model if index == 0 else f"{model}#{index}", cap)
        text, stopped = cut_at_stop(text, stops)
        # `length` only when the client's max_tokens cut it; a short extra choice ended
        # on its own.
        cut = not stopped and max_tokens is not None and len(tokenize(text)) >= max_tokens
        found.append((text, "length" if cut else "stop"))
    return found


def create_fake_upstream(latency_s: float, token_s: float, tokens_per_chunk: int = 1,
                         usage_chunk: bool = False) -> Starlette:
    """App factory for the fake LLM: same request, same completion, every time. A stream
    sends `tokens_per_chunk` tokens a chunk, pieces of the very text a plain request
    gets, and OpenAI's final usage chunk (choices: []) before [DONE] when the request
    asks for it (`stream_options.include_usage`) or `usage_chunk` says always."""

    async def chat(request: Request) -> Response:
        body = await request.json()
        model = str(body.get("model", "fake-gpt"))
        n_prompt = len(tokenize(prompt_of(body.get("messages") or [{"content": ""}])))
        choices = answers(body)
        n_out = sum(len(tokenize(text)) for text, _ in choices)
        usage = {"prompt_tokens": n_prompt, "completion_tokens": n_out,
                 "total_tokens": n_prompt + n_out}
        completion_id = "chatcmpl-" + uuid.uuid4().hex[:24]
        created = int(time.time())
        await asyncio.sleep(latency_s)
        if not body.get("stream"):
            return JSONResponse({
                "id": completion_id, "object": "chat.completion", "created": created,
                "model": model,
                "choices": [{"index": i, "message": {"role": "assistant", "content": text},
                             "finish_reason": finish}
                            for i, (text, finish) in enumerate(choices)],
                "usage": usage,
            })
        options = body.get("stream_options")
        with_usage = usage_chunk or (isinstance(options, dict)
                                     and options.get("include_usage") is True)

        async def chunks() -> AsyncIterator[bytes]:
            base = {"id": completion_id, "object": "chat.completion.chunk",
                    "created": created, "model": model}
            pieces = [deltas(text) for text, _ in choices]
            for i in range(0, max(len(p) for p in pieces), tokens_per_chunk):
                for index, piece in enumerate(pieces):
                    if i >= len(piece):
                        continue
                    delta = {"content": "".join(piece[i:i + tokens_per_chunk])}
                    if i == 0:
                        delta["role"] = "assistant"
                    chunk = {**base, "choices": [{"index": index, "delta": delta,
                                                  "finish_reason": None}]}
                    yield f"data: {json.dumps(chunk)}\n\n".encode()
                if token_s:
                    await asyncio.sleep(token_s * tokens_per_chunk)
            for index, (_, finish) in enumerate(choices):
                last = {**base, "choices": [{"index": index, "delta": {},
                                             "finish_reason": finish}]}
                yield f"data: {json.dumps(last)}\n\n".encode()
            if with_usage:
                yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(chunks(), media_type="text/event-stream")

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]),
                             Route("/health", health)])


POOLS, POOL_CONNECTIONS, POOL_KEEPALIVE = 8, 64, 16


class UpstreamClient:
    """The gateway's client for the upstream LLM (OpenAI chat completions API), behind
    the circuit breaker (CONTRACT §10) and the upstream chaos flags (§7)."""

    def __init__(self, base_url: str, timeout_s: float, chaos: ChaosControl,
                 breaker: Breaker, metrics: GatewayMetrics, breaker_opens: bool = True,
                 enforce_timeout: bool = True) -> None:
        self.base_url, self.timeout_s, self.chaos = base_url, timeout_s, chaos
        self.breaker_opens, self.enforce_timeout = breaker_opens, enforce_timeout
        self.breaker, self.metrics = breaker, metrics
        # Several small connection pools, taken in turn: httpcore scans every connection
        # and waiting request of its pool to place each request, so one pool of 512 spent
        # ~30 % of the gateway's CPU placing requests at 100 chats/s with 300 in flight.
        self._clients = [httpx.AsyncClient(
            base_url=base_url, timeout=timeout_s,
            limits=httpx.Limits(max_connections=POOL_CONNECTIONS,
                                max_keepalive_connections=POOL_KEEPALIVE))
            for _ in range(POOLS)]
        self._turn = itertools.cycle(self._clients)
        metrics.breaker_state.set_function(lambda: self.breaker.state)

    @property
    def _client(self) -> httpx.AsyncClient:
        return next(self._turn)

    async def close(self) -> None:
        for client in self._clients:
            await client.aclose()

    async def reachable(self) -> bool:
        try:
            await self._client.get("/health", timeout=2.0)
            return True  # any HTTP answer means the upstream is there
        except httpx.HTTPError:
            return False

    async def complete(self, body: dict[str, Any], tenant: str | None = None
                       ) -> dict[str, Any]:
        response = await self._call(
            lambda: self._client.post("/v1/chat/completions", json=body), tenant)
        data: dict[str, Any] = response.json()
        return data

    async def open_stream(self, body: dict[str, Any], tenant: str | None = None
                          ) -> httpx.Response:
        """Start a streaming completion; the caller iterates and closes the response."""
        client = self._client
        request = client.build_request("POST", "/v1/chat/completions", json=body)
        return await self._call(lambda: client.send(request, stream=True), tenant)

    async def _call(self, send: Callable[[], Awaitable[httpx.Response]],
                    tenant: str | None) -> httpx.Response:
        """One upstream call through the breaker: a fast 503 while it is open."""
        wait = self.breaker.admit() if self.breaker_opens else None
        if wait is not None:
            self.metrics.breaker_fastfail.inc()
            raise UpstreamError(503, "upstream_unavailable", "the upstream LLM is failing; "
                                "the circuit breaker is open", retry_after=wait)
        try:
            response = await self._attempt(send, tenant)
        except UpstreamError as exc:
            if exc.breaker_failure:
                self.breaker.failed()
            else:
                self.breaker.succeeded()  # the upstream answered: it is there
            raise
        except BaseException:
            self.breaker.released()  # the client went away mid-call
            raise
        self.breaker.succeeded()
        return response

    async def _attempt(self, send: Callable[[], Awaitable[httpx.Response]],
                       tenant: str | None) -> httpx.Response:
        if self.chaos.outage("upstream"):
            raise UpstreamError(502, "upstream_error", "the upstream LLM is unreachable")
        await self._chaos_latency(tenant)
        injected = self.chaos.hits("upstream-errors", tenant)
        if injected is not None:
            raise UpstreamError(502, "upstream_error",
                                f"the upstream LLM answered {injected.get('status', 500)}")
        try:
            response = await self._send_retrying_connect(send)
        except httpx.TimeoutException:
            raise UpstreamError(504, "upstream_timeout", "the upstream LLM timed out") from None
        except httpx.HTTPError:
            raise UpstreamError(502, "upstream_error", "the upstream LLM is unreachable") from None
        if response.status_code != 200:
            await response.aclose()
            raise UpstreamError(502, "upstream_error",
                                f"the upstream LLM answered {response.status_code}",
                                breaker_failure=response.status_code >= 500)
        return response

    async def _send_retrying_connect(self, send: Callable[[], Awaitable[httpx.Response]]
                                     ) -> httpx.Response:
        """A connect error never reached the upstream, so one retry cannot bill twice;
        nothing else is retried (§10)."""
        try:
            return await send()
        except httpx.ConnectError:
            self.metrics.upstream_retries.labels("connect_error").inc()
            return await send()

    async def _chaos_latency(self, tenant: str | None) -> None:
        """upstream-latency {ms}: the answer comes that much later; past the timeout the
        call times out (504) as a slow upstream would make it."""
        delay = self.chaos.hits("upstream-latency", tenant)
        if delay is None:
            return
        ms = delay.get("ms", 0)
        seconds = float(ms) / 1000 if isinstance(ms, int | float) else 0.0
        if seconds >= self.timeout_s and self.enforce_timeout:
            await asyncio.sleep(self.timeout_s)
            raise UpstreamError(504, "upstream_timeout", "the upstream LLM timed out")
        await asyncio.sleep(seconds)
