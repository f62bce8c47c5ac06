"""Coordinated-omission check.

A local aiohttp target, in its own process, answers in ~1 ms but stalls once for 1 s,
2 s after its first request. The open model offers 200 req/s for 5 s and measures from
intended send times; its p99 is compared with the ground truth for that schedule (each
request's completion minus its intended time when the target serves requests one at a
time, 1 ms each, behind the stall), next to a closed-loop client's p99.

    python benchmarks/coordinated_omission.py
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time

from aiohttp import web
from hdrh.histogram import HdrHistogram

from pytest_sidecar.load.http1 import Http1Pool
from pytest_sidecar.load.openmodel import run_closed, run_open
from pytest_sidecar.load.schedule import Arrivals

RATE, DURATION, STALL_AT, STALL_S, SERVICE_S = 200, 5.0, 2.0, 1.0, 0.001


def serve(port_queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """The target: one request at a time; one stall, STALL_AT after its first request."""
    async def main() -> None:
        state = {"first": 0.0, "stalled": False}
        lock = asyncio.Lock()

        async def handle(request: web.Request) -> web.Response:
            async with lock:
                now = time.monotonic()
                state["first"] = state["first"] or now
                if not state["stalled"] and now - state["first"] >= STALL_AT:
                    state["stalled"] = True
                    await asyncio.sleep(STALL_S)
                await asyncio.sleep(SERVICE_S)
            return web.Response(text="ok")

        async def reset(request: web.Request) -> web.Response:
            state["first"], state["stalled"] = 0.0, False
            return web.Response(text="reset")

        app = web.Application()
        app.router.add_get("/", handle)
        app.router.add_post("/reset", reset)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_queue.put(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(main())


def ground_truth(offsets: list[float]) -> HdrHistogram:
    """Latency from intended send time for a one-at-a-time server with one stall."""
    truth, free_at, stalled = HdrHistogram(1, 3_600_000_000, 3), 0.0, False
    for t in offsets:
        start = max(t, free_at)  # waits for the requests before it
        service = SERVICE_S
        if not stalled and start >= STALL_AT:  # the request that meets the stall
            service, stalled = service + STALL_S, True
        free_at = start + service
        truth.record_value(max(1, round((free_at - t) * 1e6)))
    return truth


async def measure(url: str) -> None:
    pool = Http1Pool(url)  # the engine's own client, as in the scenario's lanes

    async def send() -> tuple[str, int | None]:
        response = await pool.request("GET", "/")
        await response.read()
        return "chat", response.status

    try:
        offsets = list(Arrivals(rate=RATE, duration_s=DURATION).offsets())
        open_result = await run_open(offsets, send, concurrency=10_000)
        await (await pool.request("POST", "/reset", body=b"")).read()
        closed_result = await run_closed(1, DURATION, send)
    finally:
        await pool.close()
    truth_p99 = ground_truth(offsets).get_value_at_percentile(99.0) / 1000
    open_p99 = open_result.histograms.summary("chat")["p99_ms"]
    closed = closed_result.histograms.summary("chat")
    print(f"target: {RATE} req/s for {DURATION:g} s, one {STALL_S:g} s stall at {STALL_AT:g} s")
    print(f"ground truth p99 (from intended times):  {truth_p99:8.1f} ms")
    print(f"open model p99:                          {open_p99:8.1f} ms "
          f"({(open_p99 / truth_p99 - 1) * 100:+.1f} % vs truth; scheduler lag p99 "
          f"{open_result.lag_p99_ms:.2f} ms, trustworthy={open_result.trustworthy})")
    print(f"closed loop (1 client) p99:              {closed['p99_ms']:8.1f} ms "
          f"({closed['count']} requests)")


def main() -> None:
    ports: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    server = multiprocessing.Process(target=serve, args=(ports,), daemon=True)
    server.start()
    try:
        asyncio.run(measure(f"http://127.0.0.1:{ports.get(timeout=10)}/"))
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()
