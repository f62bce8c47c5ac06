"""A real control plane in its own process on 127.0.0.1, with a tiny demo suite to run.

Each test gets its own data directory and suite copy; runs start real pytest processes
(with the sidecar plugin). PYTEST_ADDOPTS leaves out two heavy plugins the demo suite
does not use, so a run takes ~3 s instead of ~8 s on two cores.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.machine import shared_machine  # noqa: F401 (autouse: the machine lock)

SCOPES = ("tests.read", "tests.run", "observability.read", "deployments.read",
          "autoscaling.read", "security.read", "compliance.read")
ADMIN = "cp-admin-7f3c9e"  # every scope
NO_SCOPE = "cp-noscope-1b2d"
TOKENS = {ADMIN: {"subject": "admin", "scopes": list(SCOPES)},
          NO_SCOPE: {"subject": "nobody", "scopes": []},
          **{f"cp-only-{s}": {"subject": s, "scopes": [s]} for s in SCOPES}}
SUITES = {"demo": ["test_demo.py"], "slow": ["test_slow.py"], "broken": ["test_missing.py"],
          "teardown": ["test_teardown.py"], "llm": ["test_llm.py"]}

DEMO = '''
import pathlib


def test_quick_pass():
    pass


def test_quick_fail():
    assert 1 == 2, "one is not two"


def test_flaky():
    counter = pathlib.Path(__file__).with_name("flaky.count")
    n = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(n + 1))
    assert n % 2 == 1, f"run {n} of the flaky test fails on even runs"
'''
SLOW = '''
import time


def test_waits():
    time.sleep(120)
'''
# Two phases report on each test: the live page must still show one row per test.
TEARDOWN = '''
import pytest


@pytest.fixture
def breaks_on_teardown():
    yield
    raise RuntimeError("teardown broke")


def test_passes_then_its_teardown_breaks(breaks_on_teardown):
    pass


def test_fails_then_its_teardown_breaks(breaks_on_teardown):
    assert 1 == 2, "the call failed"
'''
# What an `slo` spec records of streamed chats (tests/load/test_slo_adherence.py), TTFT
# growing run by run: the history keeps each figure and says which way is better.
LLM = '''
import pathlib

import pytest


@pytest.mark.slo
def test_streams(evidence):
    counter = pathlib.Path(__file__).with_name("llm.count")
    n = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(n + 1))
    lanes = [{"lane": lane, "status": "2xx: 40", "ok": 40, "p50 ms": base, "p90 ms": base * 2,
              "p95 ms": base * 2, "p99 ms": base * 3, "max ms": base * 4}
             for lane, base in (("ttft", 40.0 + 10 * n), ("itl", 3.0), ("tpot", 3.5),
                                ("e2e", 120.0))]
    evidence.record(streams={"streams": 40, "output_tokens": 800,
                             "output_tokens_per_s": 80.0, "request_tokens_per_s": 7.5,
                             "token_count_source": "usage chunk"},
                    formulas={"ttft": "first content chunk - intended send time"},
                    table=lanes, rate=40.0)
'''
AUDIT = [{"ts": "2026-12-01T10:00:00Z", "event": "chat.submit", "trace_id": "t1",
          "tenant_id": "tA", "snippet": "mail me at jane.doe@example.com"},
         {"ts": "2026-12-01T10:00:01Z", "event": "trace.complete", "trace_id": "t1",
          "tenant_id": "tA"}]


@dataclass
class ControlPlane:
    url: str
    process: subprocess.Popen[str]
    data_dir: Path
    suite: Path
    output: list[str] = field(default_factory=list)

    def client(self, token: str | None = ADMIN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.output.append(self.process.stdout.read() or "")


def start(data_dir: Path, suite: Path, **env: str) -> ControlPlane:
    environment = {**os.environ, "AUTH_MODE": "static", "AUTH_TOKENS_JSON": json.dumps(TOKENS),
                   "CP_SUITES_JSON": json.dumps(SUITES),
                   "CP_AUDIT_LOG": str(suite / "audit.jsonl"),
                   "PYTEST_ADDOPTS": "-p no:schemathesis -p no:hypothesispytest", **env}
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest_sidecar.cli.controlplane", "serve", "--port", "0",
         "--data-dir", str(data_dir), "--suite-root", str(suite)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 30)
    line = process.stdout.readline() if ready else ""
    found = re.search(r"http://127\.0\.0\.1:\d+", line)
    if not found:
        process.kill()
        raise RuntimeError(f"the control plane did not start: {line!r}")
    plane = ControlPlane(found.group(0), process, data_dir, suite, [line])
    return plane


def write_suite(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "test_demo.py").write_text(DEMO)
    (root / "test_slow.py").write_text(SLOW)
    (root / "test_teardown.py").write_text(TEARDOWN)
    (root / "test_llm.py").write_text(LLM)
    (root / "audit.jsonl").write_text("".join(json.dumps(line) + "\n" for line in AUDIT))
    return root




@pytest.fixture
def control_plane(tmp_path: Path) -> Iterator[ControlPlane]:
    """A control plane (static tokens, the demo suite), stopped after the test."""
    plane = start(tmp_path / "data", write_suite(tmp_path / "suite"))
    try:
        yield plane
    finally:
        plane.stop()
        kill_runs(tmp_path)


def kill_runs(root: Path) -> None:
    """Stop pytest runs a killed control plane left behind (their argv names `root`)."""
    subprocess.run(["pkill", "-f", "--", f"--sidecar-report-dir={root}"], check=False)


def launch(client: httpx.Client, **body: Any) -> str:
    response = client.post("/api/testruns", json={"suite": "demo", **body})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def events(client: httpx.Client, run_id: str, after: int = 0,
           limit: int | None = None) -> list[tuple[int, dict[str, Any]]]:
    """The run's SSE events after `after` (up to its end, or `limit` of them)."""
    found: list[tuple[int, dict[str, Any]]] = []
    headers = {"Last-Event-ID": str(after)} if after else {}
    with client.stream("GET", f"/api/testruns/{run_id}/events", headers=headers,
                       timeout=120) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        event_id = None
        for line in response.iter_lines():
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: ") and event_id is not None:
                found.append((event_id, json.loads(line[6:])))
                if found[-1][1]["type"] == "end" or (limit and len(found) >= limit):
                    break
    return found


def wait_state(client: httpx.Client, run_id: str, states: tuple[str, ...],
               timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run = client.get(f"/api/testruns/{run_id}").json()
        if run["state"] in states or time.monotonic() > deadline:
            return dict(run)
        time.sleep(0.1)
