"""Helpers for the plugin self-tests: a fake target server (the environment they share
with tests/suite is tests/pytester_env.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.pytester_env import (  # noqa: F401 (fixtures and a hook, found here)
    hide_package,
    scrubbed_env,
    shared_machine,
)

TOKENS = {"a": {"write": "tok-aw-7f3k29xq", "read": "tok-ar-8g4m31yr"},
          "b": {"write": "tok-bw-9h5n42zs", "read": "tok-br-0j6p53at"}}


class FakeTarget:
    """A tiny HTTP server standing in for a target; `require_auth` decides its 401s."""

    def __init__(self, require_auth: bool) -> None:
        self.require_auth = require_auth
        self.authorizations: list[str] = []  # every Authorization header it was sent
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.authorizations.append(self.headers.get("authorization", ""))
                authed = self.headers.get("authorization", "").startswith("Bearer tok-")
                status = 200 if self.path == "/healthz" else (
                    401 if owner.require_auth and not authed else 404)
                body = json.dumps({"code": "x", "message": "y"}).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                """The chat route: refused without a token when auth is on, else a
                one-token completion (what the auth and tenant probes ask)."""
                self.rfile.read(int(self.headers.get("content-length") or 0))
                owner.authorizations.append(self.headers.get("authorization", ""))
                authed = self.headers.get("authorization", "").startswith("Bearer tok-")
                refused = owner.require_auth and not authed
                status = 401 if refused else (200 if self.path == "/v1/chat/completions"
                                              else 404)
                payload = {"code": "unauthorized", "message": "no token"} if refused else {
                    "id": "chatcmpl-fake", "object": "chat.completion", "created": 0,
                    "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant",
                                                           "content": "ok"}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def write(self, path: Path, capabilities: list[str], **extra: Any) -> Path:
        doc = {"url": self.url, "capabilities": capabilities,
               "tenants": {key: {"id": f"t{key.upper()}", "tokens": tokens}
                           for key, tokens in TOKENS.items()}}
        doc.update(extra)
        path.write_text(json.dumps(doc))
        return path


@pytest.fixture
def fake_tokens() -> dict[str, dict[str, str]]:
    """The tokens a fake target's file declares (tenant -> role -> token)."""
    return TOKENS


@pytest.fixture
def fake_target_factory() -> Iterator[Callable[..., FakeTarget]]:
    """Start fake targets: `fake_target_factory(require_auth=True)`; stopped afterwards."""
    started: list[FakeTarget] = []

    def start(require_auth: bool = True) -> FakeTarget:
        started.append(FakeTarget(require_auth))
        return started[-1]

    yield start
    for target in started:
        target.server.shutdown()
