"""The transports that wait out a 429's Retry-After for SidecarClient (sync and async)."""

from __future__ import annotations

import asyncio
import time

import httpx

__all__ = ["MAX_RATE_LIMIT_WAIT_S", "AsyncRetryRateLimited", "RetryRateLimited"]

MAX_RATE_LIMIT_WAIT_S = 10.0


def _retry_after(response: httpx.Response, waited: float) -> float | None:
    """Seconds to wait before retrying a 429, or None to give it back to the caller."""
    if response.status_code != 429:
        return None
    raw = response.headers.get("retry-after", "1")
    # At least a second: a Retry-After of 0 (a target's bug) must not make a busy loop.
    delay = max(1.0, float(raw)) if raw.isdigit() else 1.0
    return delay if waited + delay <= MAX_RATE_LIMIT_WAIT_S else None


class RetryRateLimited(httpx.BaseTransport):
    """Honours Retry-After on 429 (bounded), so ordinary specs survive a deployment's rate
    limits; the rate-limit specs use clients without it to see every 429."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner, self.retries = inner, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        waited = 0.0
        while True:
            response = self.inner.handle_request(request)
            delay = _retry_after(response, waited)
            if delay is None:
                return response
            response.close()
            time.sleep(delay)
            waited += delay
            self.retries += 1

    def close(self) -> None:
        self.inner.close()


class AsyncRetryRateLimited(httpx.AsyncBaseTransport):
    """RetryRateLimited for the async client."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner, self.retries = inner, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        waited = 0.0
        while True:
            response = await self.inner.handle_async_request(request)
            delay = _retry_after(response, waited)
            if delay is None:
                return response
            await response.aclose()
            await asyncio.sleep(delay)
            waited += delay
            self.retries += 1

    async def aclose(self) -> None:
        await self.inner.aclose()
