"""What a short-lived HTTP client costs (tls.py): httpx's default, which builds a TLS
context per client, side by side with the shared context, over real GETs to a loopback
server (an http:// URL, as every embedded-stack request is).

    python benchmarks/client_setup.py [--reads 200]

Prints, per way, the median and p99 of one read (client made, one GET, client closed)
in milliseconds, and the total for the reads: the backpressure spec reads back ~120
traces this way, the conservation specs hundreds.
"""

from __future__ import annotations

import argparse
import http.server
import statistics
import threading
import time
from collections.abc import Callable

import httpx

from pytest_sidecar.tls import tls_context


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


def timed(reads: int, read: Callable[[], None]) -> list[float]:
    took = []
    for _ in range(reads):
        started = time.perf_counter()
        read()
        took.append((time.perf_counter() - started) * 1000)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=200, help="reads per way (default 200)")
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"

    def fresh() -> None:
        with httpx.Client() as client:
            client.get(url)

    def shared() -> None:
        with httpx.Client(verify=tls_context()) as client:
            client.get(url)

    print(f"{'client per read':<28}{'p50 ms':>9}{'p99 ms':>9}{'total s':>9}")
    for name, read in (("httpx default (own TLS)", fresh), ("shared TLS context", shared)):
        took = sorted(timed(args.reads, read))
        p99 = took[min(len(took) - 1, int(0.99 * len(took)))]
        print(f"{name:<28}{statistics.median(took):>9.2f}{p99:>9.2f}{sum(took) / 1000:>9.2f}")
    server.shutdown()


if __name__ == "__main__":
    main()
