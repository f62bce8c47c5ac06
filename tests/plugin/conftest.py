"""Helpers for the plugin self-tests: a scrubbed environment and a fake target server."""

from __future__ import annotations

import importlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.machine import machine

# Imported here, before any in-process pytester run: pytester snapshots sys.modules, so a
# module first imported inside an inner run is imported afresh by the next one, and
# exception classes from two copies no longer match (httpx maps httpcore's errors with
# a table it builds once, so httpcore, which httpx imports lazily, must be here too).
for _module in ("httpcore", "httpx", "pytest_sidecar.plugin", "pytest_sidecar.probes",
                "pytest_sidecar.embedded"):
    importlib.import_module(_module)

TOKENS = {"a": {"write": "tok-aw-7f3k29xq", "read": "tok-ar-8g4m31yr"},
          "b": {"write": "tok-bw-9h5n42zs", "read": "tok-br-0j6p53at"}}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "alone: this self-test holds the machine alone "
                            "(it measures timing that other self-tests would disturb)")


@pytest.fixture(autouse=True)
def shared_machine(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every plugin self-test holds the machine shared; one marked `alone` holds it
    alone (tests/machine.py says why)."""
    with machine(tmp_path_factory, alone=request.node.get_closest_marker("alone") is not None):
        yield


@pytest.fixture(autouse=True)
def scrubbed_env(monkeypatch: pytest.MonkeyPatch, pytester: pytest.Pytester) -> None:
    """No SIDECAR_* setting of the developer's shell leaks into a self-test."""
    for name in list(os.environ):
        if name.startswith("SIDECAR_"):
            monkeypatch.delenv(name)
    # Inner runs have no ini file; give them the one setting pytest-asyncio insists on
    # (after pytester is set up: it clears PYTEST_ADDOPTS when it starts).
    monkeypatch.setenv("PYTEST_ADDOPTS", "-o asyncio_default_fixture_loop_scope=function")


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
def hide_package(pytester: pytest.Pytester,
                 monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """`hide_package("openai")`: the runs this test starts cannot import that package, as
    on a runner without the extra (a shim first on PYTHONPATH raises ImportError)."""
    def hide(name: str) -> None:
        shim = pytester.path / "shim" / name
        shim.mkdir(parents=True)
        (shim / "__init__.py").write_text(f"raise ImportError('{name} is not installed')\n")
        monkeypatch.setenv("PYTHONPATH", str(shim.parent))

    return hide


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
