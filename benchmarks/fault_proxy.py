"""The fault proxy's overhead with no toxics, side by side with a
direct connection in one run.

A local fake upstream (the reference stack's, in a thread) answers chats. The same
client sends the same requests straight to it and through `sidecar-chaos proxy`'s data
path: sequentially for latency (p50/p99, so the added latency is per request), then from
16 threads for the most requests per second each path carries.

    python benchmarks/fault_proxy.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from pytest_sidecar.chaos.toxiproxy import AppThread, ProxyThread
from pytest_sidecar.stack.upstream import create_fake_upstream

BODY = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}


def latencies(url: str, count: int) -> list[float]:
    seconds = []
    with httpx.Client(base_url=url) as client:
        for _ in range(count):
            started = time.perf_counter()
            client.post("/v1/chat/completions", json=BODY).raise_for_status()
            seconds.append(time.perf_counter() - started)
    return seconds


def throughput(url: str, count: int, threads: int = 16) -> float:
    def worker(share: int) -> None:
        with httpx.Client(base_url=url) as client:
            for _ in range(share):
                client.post("/v1/chat/completions", json=BODY).raise_for_status()

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, [count // threads] * threads))
    return (count // threads * threads) / (time.perf_counter() - started)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    upstream = AppThread(create_fake_upstream(0.0, 0.0))
    proxy = ProxyThread()
    direct = upstream.start()
    api = proxy.start()
    listen = httpx.post(api + "/proxies", json={
        "name": "bench", "listen": "127.0.0.1:0",
        "upstream": direct.removeprefix("http://")}).json()["listen"]
    proxied = f"http://{listen}"
    latencies(direct, 100)  # warm both paths
    latencies(proxied, 100)
    rows = []
    for name, url in (("direct", direct), ("through the proxy", proxied)):
        seconds = latencies(url, args.requests)
        rows.append((name, statistics.median(seconds) * 1000, percentile(seconds, 0.99) * 1000,
                     throughput(url, args.requests)))
    print(f"{'path':20} {'p50 ms':>8} {'p99 ms':>8} {'req/s (16 threads)':>20}")
    for name, p50, p99, rate in rows:
        print(f"{name:20} {p50:8.3f} {p99:8.3f} {rate:20.0f}")
    (_, d50, d99, drate), (_, p50, p99, prate) = rows
    print(f"added by the proxy: p50 {p50 - d50:+.3f} ms, p99 {p99 - d99:+.3f} ms, "
          f"throughput {prate / drate:.0%} of direct")
    proxy.stop()
    upstream.stop()


if __name__ == "__main__":
    main()
