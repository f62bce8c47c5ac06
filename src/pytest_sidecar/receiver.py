"""A webhook receiver on this runner's loopback: records every POST to its own path.

Used by the webhook specs (§2.6) and by the conservation check across restarts (§10),
which reads its deliveries as one of the trace channels.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _DeepBacklogServer(ThreadingHTTPServer):
    # A target catching up after a restart delivers dozens of webhooks at once; with the
    # default backlog of 5 the kernel refused some, and a target that does not retry
    # (which the §2.6 spec judges, not the §10 one) lost them to the receiver.
    request_queue_size = 1024


class Receiver:
    """A local HTTP receiver: records each POST to its own path; answers 500 to the first
    `fail_first`. The path is unique, so a retry still on its way to an earlier receiver
    that had the same port (ports are reused) is not counted as this one's."""

    def __init__(self, host: str = "127.0.0.1", fail_first: int = 0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.connections = 0
        self.fail_first = fail_first
        owner = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def setup(self) -> None:
                with lock:
                    owner.connections += 1
                super().setup()

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.path != owner.path:
                    self.send_response(404)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                with lock:
                    owner.calls.append({"t": time.monotonic(), "body": raw, "headers": {
                        k.lower(): v for k, v in self.headers.items()}})
                    status = 500 if len(owner.calls) <= owner.fail_first else 204
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass  # the spec records what it needs; the terminal stays quiet

        self.server = _DeepBacklogServer((host, 0), Handler)
        self.port = self.server.server_address[1]
        self.path = f"/hook/{uuid.uuid4().hex}"
        self.url = f"http://{host}:{self.port}{self.path}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float) -> list[dict[str, Any]]:
        """The calls so far, once there are `count` of them or `timeout` passed."""
        deadline = time.monotonic() + timeout
        while len(self.calls) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.calls

    def deliveries(self) -> list[tuple[float, dict[str, Any]]]:
        """(arrival time, JSON body) of each call whose body is a JSON object."""
        found = []
        for call in list(self.calls):
            try:
                body = json.loads(call["body"])
            except ValueError:
                continue
            if isinstance(body, dict):
                found.append((call["t"], body))
        return found

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
