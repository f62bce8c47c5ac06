"""The load engine's HTTP/1.1 client against a real aiohttp server on 127.0.0.1: bodies
whole and streamed line by line, kept-alive connections reused, a connection the server
closed while idle replaced, and every failure an exception the runner counts."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from pytest_sidecar.load.http1 import Http1Pool

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def server(routes: dict[tuple[str, str], Handler],
                 keepalive_timeout: float = 75.0) -> AsyncIterator[str]:
    app = web.Application()
    for (method, path), handler in routes.items():
        app.router.add_route(method, path, handler)
    runner = web.AppRunner(app, keepalive_timeout=keepalive_timeout)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def test_a_post_sends_its_json_and_headers_and_reads_the_answer() -> None:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"body": await request.json(),
                                  "auth": request.headers.get("authorization"),
                                  "host": request.headers.get("host")},
                                 status=201, headers={"x-trace-id": "t1"})

    async def main() -> tuple[int, dict[str, str], Any, str]:
        async with server({("POST", "/v1/chat"): echo}) as url:
            pool = Http1Pool(url)
            response = await pool.request("POST", "/v1/chat", {"authorization": "Bearer x"},
                                          json_body={"q": "é"})
            found = await response.json()
            await pool.close()
            return response.status, response.headers, found, url

    status, headers, found, url = asyncio.run(main())
    assert status == 201 and headers["x-trace-id"] == "t1"
    assert found == {"body": {"q": "é"}, "auth": "Bearer x", "host": url.split("//")[1]}


def test_a_streamed_body_arrives_line_by_line_as_it_is_written() -> None:
    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for n in range(3):
            await response.write(f"data: {n}\n\n".encode())
            await asyncio.sleep(0.05)
        await response.write(b"data: [DONE]")  # no line end: still a line
        await response.write_eof()
        return response

    async def main() -> list[tuple[bytes, float]]:
        async with server({("GET", "/s"): events}) as url:
            pool = Http1Pool(url)
            response = await pool.request("GET", "/s")
            loop = asyncio.get_running_loop()
            seen = [(line, loop.time()) async for line in response.lines()]
            await pool.close()
            return seen

    seen = asyncio.run(main())
    assert [line for line, _ in seen] == [b"data: 0", b"", b"data: 1", b"", b"data: 2", b"",
                                          b"data: [DONE]"]
    assert seen[4][1] - seen[0][1] >= 0.08, "lines came as written, not all at the end"


def test_connections_are_kept_alive_and_one_closed_while_idle_is_replaced() -> None:
    peers: list[Any] = []

    async def who(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername") if request.transport
                     else None)
        return web.Response(text="ok")

    async def main() -> list[int]:
        async with server({("GET", "/"): who}, keepalive_timeout=0.2) as url:
            pool = Http1Pool(url)
            statuses = []
            for pause in (0, 0, 0.5, 0):  # the server closes idle connections after 0.2 s
                await asyncio.sleep(pause)
                response = await pool.request("GET", "/")
                await response.read()
                statuses.append(response.status)
            await pool.close()
            return statuses

    assert asyncio.run(main()) == [200, 200, 200, 200]
    assert peers[0] == peers[1] and peers[2] != peers[1] and peers[3] == peers[2]


def test_failures_are_exceptions_the_runner_counts() -> None:
    async def half(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-length": "100"})
        await response.prepare(request)
        await response.write(b"only part")
        assert request.transport is not None
        request.transport.close()
        return response

    async def main() -> None:
        with socket.socket() as probe:  # a loopback port nobody listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with pytest.raises(ConnectionRefusedError):
            await Http1Pool(f"http://127.0.0.1:{port}").request("GET", "/")
        async with server({("GET", "/half"): half}) as url:
            pool = Http1Pool(url)
            response = await pool.request("GET", "/half")
            with pytest.raises(ConnectionError, match="mid-response"):
                await response.read()
            await pool.close()

    asyncio.run(main())
    with pytest.raises(ValueError, match="not an http"):
        Http1Pool("ftp://127.0.0.1/")


def test_a_body_without_a_length_ends_with_the_connection() -> None:
    """An answer framed by neither content-length nor chunked (HTTP/1.0 style) is read to
    the connection's end, not taken for a broken one."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it")
        await writer.drain()
        writer.close()

    async def main() -> bytes:
        listener = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        async with listener:
            pool = Http1Pool(f"http://127.0.0.1:{port}")
            body = await (await pool.request("GET", "/")).read()
            await pool.close()
            return body

    assert asyncio.run(main()) == b"all of it"


def test_streams_ask_for_the_usage_chunk_when_the_target_declares_it() -> None:
    """The scenario's streamed chats over this client: each content chunk timed, the
    usage chunk asked for with include_usage and its count taken over the chunks'."""
    from pytest_sidecar.load.runner import Profile, run_scenario

    bodies: list[dict[str, Any]] = []

    async def chat(request: web.Request) -> web.StreamResponse:
        bodies.append(await request.json())
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for word in ("one", " two"):
            chunk = {"choices": [{"index": 0, "delta": {"content": word}}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        usage = {"choices": [], "usage": {"completion_tokens": 5}}
        await response.write(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())
        await response.write_eof()
        return response

    async def main() -> dict[str, Any]:
        async with server({("POST", "/v1/chat/completions"): chat}) as url:
            run = await run_scenario(url, (("tenant-a", "t"),), Profile(
                rate=20, duration_s=0.3, arrivals="constant", attach_rate=0.0,
                stream_share=1.0, include_usage=True))
            return run.summary

    summary = asyncio.run(main())
    assert bodies and all(b["stream_options"] == {"include_usage": True} for b in bodies)
    llm = summary["llm"]
    assert llm["streams"] == len(bodies) and llm["token_count_source"] == "usage chunk"
    assert llm["output_tokens"] == 5 * len(bodies)
    assert summary["lanes"]["itl"]["ok"]["count"] == len(bodies)  # one gap per answer


def test_a_post_is_never_sent_twice_and_an_early_hint_is_not_the_answer() -> None:
    """A server that reads a POST on a kept-alive connection and dies without answering
    got it once: the client raises instead of sending it again (a GET may go again). A
    103 before the final answer is skipped."""
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            received.append(head.split(b" ", 1)[0])
            if head.startswith(b"POST"):
                writer.close()  # read it, then died
                return
            writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n"
                         b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()

    async def main() -> tuple[int, bytes]:
        listener = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        async with listener:
            pool = Http1Pool(f"http://127.0.0.1:{port}")
            first = await pool.request("GET", "/")
            body = await first.read()
            with pytest.raises(ConnectionError):
                await pool.request("POST", "/v1/chat/completions", json_body={"q": 1})
            await pool.close()
            return first.status, body

    assert asyncio.run(main()) == (200, b"ok")
    assert received == [b"GET", b"POST"], "the POST went once"


@pytest.mark.parametrize(("words", "good"), [(["one"], True), ([], False)])
def test_a_one_token_answer_meets_a_tpot_limit_and_an_empty_one_no_ttft_limit(
        words: list[str], good: bool) -> None:
    """Goodput as vLLM's bench counts it: a one-token answer has TPOT 0 (no time between
    tokens), so a TPOT limit cannot fail it; an answer with no content has no TTFT."""
    from pytest_sidecar.load.runner import Profile, run_scenario

    async def chat(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for word in words:
            chunk = {"choices": [{"index": 0, "delta": {"content": word}}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def main() -> dict[str, Any]:
        async with server({("POST", "/v1/chat/completions"): chat}) as url:
            run = await run_scenario(url, (("tenant-a", "t"),), Profile(
                rate=20, duration_s=0.2, arrivals="constant", attach_rate=0.0,
                stream_share=1.0, limits=(("ttft", 5000.0), ("tpot", 1.0))))
            return dict(run.summary["llm"])

    llm = asyncio.run(main())
    assert llm["streams"] > 0
    assert llm["good"] == (llm["streams"] if good else 0)
