"""The load engine's HTTP/1.1 client: keep-alive connections over asyncio, responses
parsed by httptools (llhttp, the parser uvicorn serves with).

Why not aiohttp, which the engine used before: a load generator's figure of merit is
requests per client core. On this project's machine (benchmarks/throughput.py, GET of a
two-byte body, closed loops on one core) the engine on aiohttp's client managed ~7,900
requests per client CPU second (~125 µs each: session, cookie jar, timers, response
objects, several coroutine layers); Locust's FastHttpUser ~4,000 (~250 µs). This client
writes a request built in one `bytes` join and reads the answer through llhttp's C
callbacks into one object: the engine makes ~17,000 (~58 µs, runner and histograms
included). It does only what the scenario needs: GET and POST, a body read whole or
streamed line by line (server-sent events), connections reused while the server keeps
them alive, TLS through the process's verifying context, and errors as exceptions
(`ConnectionError`, `TimeoutError`) that the runner counts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast
from urllib.parse import urlsplit

import httptools

from .exceptions import LoadError


class ProtocolError(LoadError, ConnectionError):
    """The server's bytes were not an HTTP/1.1 response."""


class StaleConnection(LoadError, ConnectionError):
    """A kept-alive connection was found closed before the request was written."""


class Response:
    """A response as it arrives: status and headers first, then the body, which is read
    whole (`read`, `json`) or line by line as it streams (`lines`)."""

    def __init__(self, connection: _Connection | None = None) -> None:
        self._connection = connection
        self.status = 0
        self.headers: dict[str, str] = {}  # lower-case names; a repeated header: the last
        self._chunks: list[bytes] = []
        self._arrived = asyncio.Event()  # a chunk came, or the body ended
        self._done = False
        self._error: BaseException | None = None

    async def read(self) -> bytes:
        while not self._done:
            self._check()
            self._arrived.clear()
            await self._arrived.wait()
        self._check()
        body, self._chunks = b"".join(self._chunks), []
        return body

    async def json(self) -> Any:
        return json.loads(await self.read())

    async def lines(self) -> AsyncIterator[bytes]:
        """The body's lines as they arrive (each without its line ending)."""
        pending = b""
        while True:
            self._check()
            if self._chunks:
                data, self._chunks = b"".join(self._chunks), []
                *complete, pending = (pending + data).split(b"\n")
                for line in complete:
                    yield line.rstrip(b"\r")
                continue
            if self._done:
                break
            self._arrived.clear()
            await self._arrived.wait()
        if pending:
            yield pending.rstrip(b"\r")

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Done with it: a body not read to its end closes the connection (nothing else
        can use it); a finished one has already gone back to the pool."""
        if not self._done and self._connection is not None:
            self._connection.close()

    # Fed by the connection's parser callbacks:
    @property
    def finished(self) -> bool:
        return self._done

    def feed(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._arrived.set()

    def finish(self) -> None:
        self._done = True
        self._arrived.set()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._arrived.set()


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request in flight at a time."""

    def __init__(self, pool: Http1Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: Response | None = None
        self.headers_ready: asyncio.Future[Response] | None = None
        self._name = b""
        self.closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; they write the same.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"not an HTTP/1.1 response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        response = self.response
        if response is None or response.finished:
            return
        if exc is None and response.status and _delimited_by_close(response.headers):
            response.finish()  # a body without a length ends where the connection does
        else:
            self._fail(ConnectionError("the server closed the connection mid-response"))

    # httptools callbacks
    def on_message_begin(self) -> None:
        if self.response is None:  # an answer nobody asked for (a 408 before closing)
            self.close()
            self.response = Response()  # parsed and dropped; the connection is gone

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.response is not None
        self.response.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        assert self.response is not None
        self.response.status = self.parser.get_status_code()
        if 100 <= self.response.status < 200:
            return  # informational (103 Early Hints): the final answer follows
        if self.headers_ready is not None and not self.headers_ready.done():
            self.headers_ready.set_result(self.response)

    def on_body(self, body: bytes) -> None:
        assert self.response is not None
        self.response.feed(body)

    def on_message_complete(self) -> None:
        assert self.response is not None
        if 100 <= self.response.status < 200:  # the same request's final answer follows
            self.response.status, self.response.headers = 0, {}
            return
        response, self.response = self.response, None
        response.finish()
        if self.parser.should_keep_alive() and not self.closed:
            self.pool.release(self)
        else:
            self.close()

    def _fail(self, error: BaseException) -> None:
        if self.headers_ready is not None and not self.headers_ready.done():
            self.headers_ready.set_exception(error)
        if self.response is not None:
            self.response.fail(error)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _delimited_by_close(headers: Mapping[str, str]) -> bool:
    """A body with neither a length nor chunked framing runs to the connection's end."""
    return "content-length" not in headers and \
        "chunked" not in headers.get("transfer-encoding", "").lower()


class Http1Pool:
    """Keep-alive connections to one origin (`http(s)://host[:port]`), opened as needed
    and never capped (the open model's in-flight cap bounds the chats; each followed
    trace's stream holds one more). Methods with a body (POST) and without one (GET);
    HEAD is not supported (its answer announces a body that never comes)."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.prefix = parts.path.rstrip("/")
        default = (parts.port is None) or (self.port == (443 if self.tls else 80))
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6 literal
        authority = host if default else f"{host}:{self.port}"
        self._host_header = f"Host: {authority}\r\n".encode("latin-1")
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()

    def release(self, connection: _Connection) -> None:
        self._idle.append(connection)

    def forget(self, connection: _Connection) -> None:
        self._open.discard(connection)

    async def _connection(self, reuse: bool = True) -> tuple[_Connection, bool]:
        """A connection, and whether it was kept alive from an earlier request."""
        while reuse and self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection, True
        loop = asyncio.get_running_loop()
        ssl_context = None
        if self.tls:
            from ..tls import tls_context

            ssl_context = tls_context()
        _, connection = await loop.create_connection(
            lambda: _Connection(self), self.host, self.port, ssl=ssl_context)
        self._open.add(connection)
        return connection, False

    async def request(self, method: str, path: str,
                      headers: Mapping[str, str] | None = None,
                      body: bytes | None = None, json_body: Any = None) -> Response:
        """Send one request; returns once the status and headers arrived (the body
        follows: `read`, `json` or `lines`). Close the response when done with it."""
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":")).encode()
            headers = {"content-type": "application/json", **(headers or {})}
        head = [f"{method} {self.prefix}{path} HTTP/1.1\r\n".encode("latin-1"),
                self._host_header]
        for name, value in (headers or {}).items():
            head.append(f"{name}: {value}\r\n".encode("latin-1"))
        if body is not None:
            head.append(f"content-length: {len(body)}\r\n".encode("latin-1"))
        head.append(b"\r\n")
        if body:
            head.append(body)
        request = b"".join(head)
        connection, reused = await self._connection()
        try:
            return await self._exchange(connection, request)
        except StaleConnection:
            pass  # seen closed before the request left: it was never sent
        except ConnectionError as exc:
            # A kept-alive connection the server closed while idle fails before any byte
            # of an answer, but the server may also have read the request and died: only
            # a request that may be repeated (GET) goes once more.
            if not reused or method != "GET" or isinstance(exc, ProtocolError):
                raise
        connection, _ = await self._connection(reuse=False)
        return await self._exchange(connection, request)

    @staticmethod
    async def _exchange(connection: _Connection, request: bytes) -> Response:
        if connection.closed or connection.transport is None:
            raise StaleConnection("the server closed the kept-alive connection")
        mine = connection.response = Response(connection)
        ready: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        connection.headers_ready = ready
        connection.transport.write(request)
        try:
            return await ready
        except BaseException:
            # Cancelled or failed before its answer was handed over: the connection holds
            # a half-read answer, unless it already finished and went back to the pool.
            if connection.response is mine:
                connection.close()
            raise

    async def close(self) -> None:
        for connection in self._open:
            connection.close()
        self._open.clear()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports finish closing
