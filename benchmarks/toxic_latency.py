"""What a latency toxic adds to a request through the fault proxy, side by side with the
same request through the proxy without it, in one run.

Toxiproxy counts latency from each chunk's arrival, so a 300 ms toxic adds about 300 ms
to a request however the upstream writes its answer: in one piece (a plain chat), in two
(head, then body), or in many (a streamed chat, one chunk per token). Medians of
`--requests` requests each.

    python benchmarks/toxic_latency.py [--requests 50] [--latency 300]
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx

from pytest_sidecar.chaos.toxiproxy import AppThread, ProxyThread
from pytest_sidecar.stack.upstream import create_fake_upstream

CHAT = {"model": "sidecar-fake-1", "messages": [{"role": "user", "content": "hello"}]}


def median_ms(client: httpx.Client, count: int, stream: bool) -> float:
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.post("/v1/chat/completions", json={**CHAT, "stream": stream})
        response.raise_for_status()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--latency", type=int, default=300, help="the toxic's ms")
    args = parser.parse_args()
    upstream = AppThread(create_fake_upstream(0.0, 0.001))  # streams: 1 ms between tokens
    proxy = ProxyThread()
    upstream.start()
    with httpx.Client(base_url=proxy.start(), timeout=30) as api:
        listen = api.post("/proxies", json={"name": "llm", "upstream": upstream.url[7:]}
                          ).json()["listen"]
        rows = []
        with httpx.Client(base_url=f"http://{listen}", timeout=30) as client:
            for stream in (False, True):
                plain = median_ms(client, args.requests, stream)
                api.post("/proxies/llm/toxics", json={
                    "name": "lag", "type": "latency",
                    "attributes": {"latency": args.latency}})
                slowed = median_ms(client, args.requests, stream)
                api.delete("/proxies/llm/toxics/lag")
                rows.append(("streamed chat" if stream else "plain chat", plain, slowed))
    proxy.stop()
    upstream.stop()
    print(f"latency toxic {args.latency} ms, median of {args.requests} requests each")
    print(f"{'request':<15}{'no toxic':>12}{'with toxic':>14}{'added':>10}")
    for name, plain, slowed in rows:
        print(f"{name:<15}{plain:>10.1f}ms{slowed:>12.1f}ms{slowed - plain:>8.1f}ms")


if __name__ == "__main__":
    main()
