"""SidecarClient: the functional client of the Sidecar API (httpx, sync and async).

Both flavours share one request builder, so a header or path rule lives in one place.
`poll_until` returns the observed state timeline, which specs record as evidence. The
load engine does not use this client: one httpx client sustains a few hundred requests
a second, too few to offer load.

httpx is imported when a client is made, not when this module loads: the package exports
these names, and `sidecar-stack` or the control plane import the package without ever
sending a request through them.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .tls import tls_context
from .vocabulary.defaults import DEFAULT_MODEL
from .vocabulary.shapes import TraceStatus
from .vocabulary.states import TERMINAL

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class SentRequest:
    """What a client sent, enough to repeat it with curl."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


# The last request this process sent through a SidecarClient (one test runs at a time per
# process): a failing spec's report shows it as a curl command (reporting/reproduce.py).
LAST_SENT: deque[SentRequest] = deque(maxlen=1)
_MAX_BODY = 4096


def _remember(request: httpx.Request) -> None:
    import httpx

    try:
        body = request.content
    except httpx.RequestNotRead:  # a streamed upload: not repeatable from here
        body = b""
    LAST_SENT.append(SentRequest(request.method, str(request.url),
                                 tuple(request.headers.items()), body[:_MAX_BODY]))


async def _aremember(request: httpx.Request) -> None:
    _remember(request)
DEFAULT_MESSAGES = ({"role": "user", "content": "Explain how the gateway routes a request."},)


@dataclass(frozen=True)
class Observation:
    """One status poll: seconds since polling began, and what the status said."""

    t: float
    state: str
    progress: float | None
    status_code: int


@dataclass
class Timeline:
    """What poll_until saw, in order; `reached` is False if the deadline passed first."""

    trace_id: str
    observations: list[Observation] = field(default_factory=list)
    reached: bool = False
    last: TraceStatus | None = None

    @property
    def states(self) -> list[str]:
        """Distinct states in the order first seen."""
        return list(dict.fromkeys(o.state for o in self.observations))

    @property
    def elapsed(self) -> float:
        return self.observations[-1].t if self.observations else 0.0

    def record(self, response: httpx.Response, t: float,
               predicate: Callable[[TraceStatus], bool]) -> bool:
        """Add one status response; True (and `reached`) when predicate holds for it."""
        body: TraceStatus = response.json() if response.status_code == 200 else {}
        self.observations.append(Observation(
            t, body.get("state", f"http_{response.status_code}"), body.get("progress"),
            response.status_code))
        self.last = body
        self.reached = response.status_code == 200 and predicate(body)
        return self.reached

    def summary(self) -> dict[str, Any]:
        return {"trace_id": self.trace_id, "states": self.states, "polls": len(self.observations),
                "elapsed_s": round(self.elapsed, 3), "reached": self.reached}


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: str
    id: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


def parse_sse(lines: Iterator[str]) -> Iterator[SseEvent | str]:
    """Parse SSE lines into events; comment lines come back as plain strings."""
    event, event_id = "message", None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield SseEvent(event, "\n".join(data), event_id)
            event, data, event_id = "message", [], None
        elif line.startswith(":"):
            yield line
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                event_id = value
    if data:
        yield SseEvent(event, "\n".join(data), event_id)


def request_head(http: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """Send a request and keep its status and headers, plus the body of anything but an
    open event stream: a live trace stream stays open until its trace ends, so reading
    it whole would wait for the explainer."""
    with http.stream(method, path, **kwargs) as response:
        if "event-stream" not in response.headers.get("content-type", ""):
            response.read()
        return response


class _Requests:
    """Builds the requests of the API; the I/O is left to the subclasses."""

    def __init__(self, base_url: str, token: str | None, timeout: float,
                 model: str = DEFAULT_MODEL) -> None:
        self.base_url, self.timeout, self.model = base_url.rstrip("/"), timeout, model
        self.headers = {"authorization": f"Bearer {token}"} if token else {}

    def chat_request(self, messages: Any = None, *, model: str | None = None,
                     explain: bool = False,
                     granularity: str | None = None, features: str | None = None,
                     trace_id: str | None = None, stream: bool = False,
                     max_tokens: int | None = None, headers: dict[str, str] | None = None,
                     **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model or self.model,
                                "messages": list(messages or DEFAULT_MESSAGES), **extra}
        if stream:
            body["stream"] = True
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        sent = dict(headers or {})
        if explain:
            sent["x-explain-mode"] = "hypergraph"
        if granularity:
            sent["x-explain-granularity"] = granularity
        if features:
            sent["x-explain-features"] = features
        if trace_id:
            sent["x-trace-id"] = trace_id
        return {"method": "POST", "url": "/v1/chat/completions", "json": body, "headers": sent}

    @staticmethod
    def trace_path(trace_id: str, what: str = "status") -> str:
        return f"/v1/traces/{trace_id}" + ("" if what == "" else f"/{what}")


def trace_id_from(response: httpx.Response) -> tuple[str | None, str]:
    """(trace id, where it came from) of an explained chat's response: the x-trace-id
    header first (§2 names the trace there once one exists), then explanation_metadata."""
    header = response.headers.get("x-trace-id")
    if header:
        return header, "x-trace-id header"
    try:
        meta = response.json().get("explanation_metadata")
    except (ValueError, AttributeError):
        meta = None
    if isinstance(meta, dict) and isinstance(meta.get("trace_id"), str):
        return meta["trace_id"], "explanation_metadata"
    return None, "nowhere"


def trace_id_of(response: httpx.Response) -> str | None:
    """The trace a chat response opened (see trace_id_from), or None."""
    return trace_id_from(response)[0]


class SidecarClient(_Requests):
    """Synchronous client for one tenant and role.

    retry_rate_limited: wait out 429s (Retry-After, at most 10 s in all) instead of
    returning them; `rate_limit_retries` counts the waits.
    """

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 10.0,
                 retry_rate_limited: bool = True, model: str = DEFAULT_MODEL) -> None:
        import httpx

        from .client_retry import RetryRateLimited

        super().__init__(base_url, token, timeout, model)
        transport: httpx.BaseTransport = httpx.HTTPTransport(verify=tls_context())
        self._retrying = RetryRateLimited(transport) if retry_rate_limited else None
        self.http = httpx.Client(base_url=self.base_url, headers=self.headers, timeout=timeout,
                                 transport=self._retrying or transport, verify=tls_context(),
                                 event_hooks={"request": [_remember]})

    @property
    def rate_limit_retries(self) -> int:
        return self._retrying.retries if self._retrying else 0

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> SidecarClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def chat(self, messages: Any = None, **options: Any) -> httpx.Response:
        """POST /v1/chat/completions (options: explain, granularity, trace_id, stream, ...)."""
        request = self.chat_request(messages, **options)
        if request["json"].get("stream"):
            with self.http.stream(**request) as response:
                response.read()
                return response
        return self.http.request(**request)

    def explain(self, messages: Any = None, **options: Any) -> httpx.Response:
        """A chat with x-explain-mode: hypergraph."""
        return self.chat(messages, explain=True, **options)

    def status(self, trace_id: str) -> httpx.Response:
        return self.http.get(self.trace_path(trace_id, "status"))

    def graph(self, trace_id: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(self.trace_path(trace_id, "graph"), **kwargs)

    def cancel(self, trace_id: str) -> httpx.Response:
        return self.http.delete(self.trace_path(trace_id, ""))

    def stream_events(self, trace_id: str, timeout: float = 30.0) -> list[SseEvent | str]:
        """Read GET /v1/traces/{id}/stream until the server closes it (bounded by timeout)."""
        items: list[SseEvent | str] = []
        deadline = time.monotonic() + timeout
        import httpx

        read_timeout = httpx.Timeout(self.timeout, read=timeout)
        with self.http.stream("GET", self.trace_path(trace_id, "stream"),
                              timeout=read_timeout) as response:
            response.raise_for_status()
            for item in parse_sse(response.iter_lines()):
                items.append(item)
                if time.monotonic() > deadline:
                    raise TimeoutError(f"stream of {trace_id} still open after {timeout}s")
        return items

    def poll_until(self, trace_id: str, predicate: Callable[[TraceStatus], bool],
                   deadline: float, interval: float = 0.05) -> Timeline:
        """Poll the status until predicate(status) holds or `deadline` seconds pass."""
        timeline, start = Timeline(trace_id), time.monotonic()
        while not timeline.record(self.status(trace_id), time.monotonic() - start, predicate):
            if time.monotonic() - start >= deadline:
                break
            time.sleep(interval)
        return timeline


class AsyncSidecarClient(_Requests):
    """Asynchronous client for one tenant and role (same API, awaitable)."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 10.0,
                 retry_rate_limited: bool = True, model: str = DEFAULT_MODEL) -> None:
        import httpx

        from .client_retry import AsyncRetryRateLimited

        super().__init__(base_url, token, timeout, model)
        transport: httpx.AsyncBaseTransport = httpx.AsyncHTTPTransport(verify=tls_context())
        self._retrying = AsyncRetryRateLimited(transport) if retry_rate_limited else None
        self.http = httpx.AsyncClient(base_url=self.base_url, headers=self.headers,
                                      timeout=timeout, transport=self._retrying or transport,
                                      verify=tls_context(),
                                      event_hooks={"request": [_aremember]})

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncSidecarClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def chat(self, messages: Any = None, **options: Any) -> httpx.Response:
        request = self.chat_request(messages, **options)
        if request["json"].get("stream"):
            async with self.http.stream(**request) as response:
                await response.aread()
                return response
        return await self.http.request(**request)

    async def explain(self, messages: Any = None, **options: Any) -> httpx.Response:
        return await self.chat(messages, explain=True, **options)

    async def status(self, trace_id: str) -> httpx.Response:
        return await self.http.get(self.trace_path(trace_id, "status"))

    async def graph(self, trace_id: str, **kwargs: Any) -> httpx.Response:
        return await self.http.get(self.trace_path(trace_id, "graph"), **kwargs)

    async def cancel(self, trace_id: str) -> httpx.Response:
        return await self.http.delete(self.trace_path(trace_id, ""))

    async def poll_until(self, trace_id: str, predicate: Callable[[TraceStatus], bool],
                         deadline: float, interval: float = 0.05) -> Timeline:
        import asyncio  # already loaded by the running loop; free here, not at import

        timeline, start = Timeline(trace_id), time.monotonic()
        while not timeline.record(await self.status(trace_id), time.monotonic() - start,
                                  predicate):
            if time.monotonic() - start >= deadline:
                break
            await asyncio.sleep(interval)
        return timeline


def is_terminal(status: TraceStatus) -> bool:
    """Predicate for poll_until: the trace reached a terminal state."""
    return status.get("state") in TERMINAL


# What the `gateway_factory` fixture gives: (tenant="a", role="write", raw=False) -> client
GatewayFactory = Callable[..., SidecarClient]
