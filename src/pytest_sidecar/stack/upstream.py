"""The upstream LLM: a deterministic OpenAI-compatible fake, and the gateway's client.

The fake is a real HTTP server on its own loopback port, so the gateway's upstream hop
is the same code path as with a real LLM behind `LLM_PROXY_URL`.
"""

from __future__ import annotations

import asyncio
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
from .metrics import GatewayMetrics
from .text import fake_completion, tokenize


class UpstreamError(Exception):
    """The upstream failed; `status` is what the gateway answers (502, 503 or 504).
    `breaker_failure`: whether it counts toward opening the circuit breaker (5xx,
    timeouts, connect errors do; a 4xx answer does not)."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None,
                 breaker_failure: bool = True) -> None:
        super().__init__(message)
        self.status, self.code, self.retry_after = status, code, retry_after
        self.breaker_failure = breaker_failure


def prompt_of(messages: list[dict[str, Any]]) -> str:
    users = [m.get("content", "") for m in messages if m.get("role") == "user"]
    return str(users[-1] if users else messages[-1].get("content", ""))


def create_fake_upstream(latency_ms: float, token_ms: float, tokens_per_chunk: int = 1,
                         usage_chunk: bool = False) -> Starlette:
    """App factory for the fake LLM: same request, same completion, every time. A stream
    sends `tokens_per_chunk` tokens a chunk and, with `usage_chunk`, OpenAI's final usage
    chunk (choices: []) before [DONE]."""

    async def chat(request: Request) -> Response:
        body = await request.json()
        model = str(body.get("model", "fake-gpt"))
        prompt = prompt_of(body.get("messages") or [{"content": ""}])
        max_tokens = body.get("max_tokens")
        text = fake_completion(prompt, model, int(max_tokens) if isinstance(
            max_tokens, int | float) and not isinstance(max_tokens, bool) else None)
        completion_id = "chatcmpl-" + uuid.uuid4().hex[:24]
        created = int(time.time())
        await asyncio.sleep(latency_ms / 1000)
        if not body.get("stream"):
            n_prompt, n_out = len(tokenize(prompt)), len(tokenize(text))
            return JSONResponse({
                "id": completion_id, "object": "chat.completion", "created": created,
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": n_prompt, "completion_tokens": n_out,
                          "total_tokens": n_prompt + n_out},
            })

        async def chunks() -> AsyncIterator[bytes]:
            base = {"id": completion_id, "object": "chat.completion.chunk",
                    "created": created, "model": model}
            tokens = tokenize(text)
            for i in range(0, len(tokens), tokens_per_chunk):
                # Re-joined with single spaces, the deltas give back the same text.
                words = " ".join(tokens[i:i + tokens_per_chunk])
                delta = {"content": words if i == 0 else " " + words}
                if i == 0:
                    delta["role"] = "assistant"
                chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                yield f"data: {json.dumps(chunk)}\n\n".encode()
                if token_ms:
                    await asyncio.sleep(token_ms * tokens_per_chunk / 1000)
            last = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            yield f"data: {json.dumps(last)}\n\n".encode()
            if usage_chunk:
                n_prompt = len(tokenize(prompt))
                usage = {**base, "choices": [], "usage": {
                    "prompt_tokens": n_prompt, "completion_tokens": len(tokens),
                    "total_tokens": n_prompt + len(tokens)}}
                yield f"data: {json.dumps(usage)}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(chunks(), media_type="text/event-stream")

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]),
                             Route("/health", health)])


class UpstreamClient:
    """The gateway's client for the upstream LLM (OpenAI chat completions API), behind
    the circuit breaker (CONTRACT §10) and the upstream chaos flags (§7)."""

    def __init__(self, base_url: str, timeout_s: float, chaos: ChaosControl,
                 breaker: Breaker, metrics: GatewayMetrics, breaker_opens: bool = True,
                 enforce_timeout: bool = True) -> None:
        self.base_url, self.timeout_s, self.chaos = base_url, timeout_s, chaos
        self.breaker_opens, self.enforce_timeout = breaker_opens, enforce_timeout
        self.breaker, self.metrics = breaker, metrics
        self._client = httpx.AsyncClient(
            base_url=base_url, timeout=timeout_s,
            limits=httpx.Limits(max_connections=512, max_keepalive_connections=128))
        metrics.breaker_state.set_function(lambda: self.breaker.state)

    async def close(self) -> None:
        await self._client.aclose()

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
        request = self._client.build_request("POST", "/v1/chat/completions", json=body)
        return await self._call(lambda: self._client.send(request, stream=True), tenant)

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
