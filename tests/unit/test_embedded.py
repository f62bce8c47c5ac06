"""The stack as a process: starts on free ports, stops cleanly, keeps accepted traces."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_sidecar.embedded import EmbeddedStack


def client(stack: EmbeddedStack) -> tuple[httpx.Client, dict[str, Any]]:
    target = json.loads(Path(stack.target_file).read_text())
    token = target["tenants"]["a"]["tokens"]["write"]
    return httpx.Client(base_url=target["url"], headers={"authorization": f"Bearer {token}"},
                        timeout=10), target


def running(stack: EmbeddedStack, role: str) -> int:
    """The pid of a role's process, which must be running."""
    pid = stack.pid(role)
    assert pid is not None, f"the {role} process is not running"
    return pid


def test_serve_writes_a_private_target_file_and_stops_on_sigterm(tmp_path: Path) -> None:
    stack = EmbeddedStack(str(tmp_path))
    stack.ensure_started()
    try:
        assert os.stat(stack.target_file).st_mode & 0o777 == 0o600, "the file holds tokens"
        http, target = client(stack)
        assert target["url"].startswith("http://127.0.0.1:")
        assert "auth" in target["capabilities"]
        assert http.get("/readyz").json()["status"] == "ready"
    finally:
        pid = stack.stop(timeout=10)
    assert pid is not None and not stack.running()
    assert "sidecar-stack stopped" in stack.log_tail(), stack.log_tail()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stack_removes_the_state_directory_it_made(tmp_path: Path,
                                                     sig: signal.Signals) -> None:
    target_file = tmp_path / "target.json"
    process = subprocess.Popen([sys.executable, "-m", "pytest_sidecar.stack.cli", "serve",
                                "--target-file", str(target_file)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not target_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        state_dir = Path(json.loads(target_file.read_text())["x-reference-stack"]["state_dir"])
        assert state_dir.is_dir() and state_dir.name.startswith("sidecar-stack-")
        process.send_signal(sig)
        assert process.wait(timeout=20) == 0
    finally:
        process.kill()
    assert not state_dir.exists(), f"{sig.name} left {state_dir}"


def test_an_accepted_trace_survives_a_restart(tmp_path: Path) -> None:
    stack = EmbeddedStack(str(tmp_path))
    stack.ensure_started()
    http, _ = client(stack)
    response = http.post("/v1/chat/completions", headers={
        "x-explain-mode": "hypergraph", "x-explain-granularity": "token"},
        json={"model": "m", "max_tokens": 300, "messages": [{"role": "user", "content": "x"}]})
    trace_id = response.json()["explanation_metadata"]["trace_id"]
    stack.stop()  # mid-way through ~6 s of explanation work
    os.unlink(stack.target_file)
    stack.ensure_started()
    try:
        http, _ = client(stack)
        deadline = time.monotonic() + 30
        state = ""
        while time.monotonic() < deadline and state != "complete":
            state = http.get(f"/v1/traces/{trace_id}/status").json()["state"]
            time.sleep(0.1)
        assert state == "complete"
        assert http.get(f"/v1/traces/{trace_id}/graph").status_code == 200
    finally:
        stack.stop()


def test_a_bad_setting_refuses_to_start_with_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_sidecar.stack.cli", "serve", "--target-file",
         str(tmp_path / "t.json")], env={**os.environ, "AUTH_MODE": "maybe"},
        capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip() == ("sidecar-stack: error: AUTH_MODE='maybe': "
                                   "valid: static, none")


def test_llm_proxy_url_sends_chats_to_that_upstream(tmp_path: Path) -> None:
    first = EmbeddedStack(str(tmp_path / "first"))
    first.ensure_started()
    try:
        upstream = json.loads(Path(first.target_file).read_text())["x-reference-stack"][
            "upstream"]
        second = EmbeddedStack(str(tmp_path / "second"), env={"LLM_PROXY_URL": upstream})
        second.ensure_started()
        try:
            http, target = client(second)
            assert target["x-reference-stack"]["upstream"] is None
            response = http.post("/v1/chat/completions", json={
                "model": "m", "messages": [{"role": "user", "content": "hello"}]})
            assert response.status_code == 200
            assert response.json()["choices"][0]["message"]["content"]
        finally:
            second.stop()
    finally:
        first.stop()


def test_an_idempotent_replay_survives_a_restart(tmp_path: Path) -> None:
    stack = EmbeddedStack(str(tmp_path))
    stack.ensure_started()
    http, _ = client(stack)
    body = {"model": "m", "messages": [{"role": "user", "content": "once"}]}
    first = http.post("/v1/chat/completions", json=body, headers={"x-idempotency-key": "k-1"})
    assert first.status_code == 200
    stack.stop()
    os.unlink(stack.target_file)
    stack.ensure_started()
    try:
        http, _ = client(stack)
        again = http.post("/v1/chat/completions", json=body, headers={"x-idempotency-key": "k-1"})
        assert again.headers.get("x-idempotent-replay") == "true"
        assert again.json() == first.json()
    finally:
        stack.stop()


def _state(http: httpx.Client, trace_id: str, wanted: str, within_s: float = 30) -> str:
    deadline, state = time.monotonic() + within_s, ""
    while time.monotonic() < deadline and state != wanted:
        state = http.get(f"/v1/traces/{trace_id}/status").json()["state"]
        time.sleep(0.05)
    return state


def test_gateway_and_explainer_are_two_processes_each_restarted_alone(tmp_path: Path) -> None:
    from pytest_sidecar.metrics import scrape

    stack = EmbeddedStack(str(tmp_path))
    stack.ensure_started()
    try:
        http, target = client(stack)
        pids = target["x-reference-stack"]["pids"]
        assert pids == {"gateway": stack.pid("gateway"), "explainer": stack.pid("explainer")}
        explain = {"x-explain-mode": "hypergraph", "x-explain-granularity": "token"}
        chat = {"model": "m", "max_tokens": 60, "messages": [{"role": "user", "content": "x"}]}
        trace = http.post("/v1/chat/completions", headers=explain, json=chat).json()[
            "explanation_metadata"]["trace_id"]
        explainer_metrics = target["metrics"]["explainer"]

        # The gateway dies; the explainer finishes the work it holds all the same.
        os.kill(running(stack, "gateway"), signal.SIGKILL)
        deadline = time.monotonic() + 30
        while scrape(explainer_metrics).value("explainer_jobs_total", state="complete",
                                              granularity="token") < 1:
            assert time.monotonic() < deadline, "the explainer stopped with the gateway"
            time.sleep(0.1)
        stack.restart(roles=("gateway",))
        http, _ = client(stack)
        assert _state(http, trace, "complete") == "complete"

        # The explainer dies; the gateway says so, and still acknowledges explain work,
        # which the restarted explainer finishes.
        os.kill(running(stack, "explainer"), signal.SIGKILL)
        deadline = time.monotonic() + 10
        while http.get("/readyz").status_code == 200:
            assert time.monotonic() < deadline, "/readyz never noticed the dead explainer"
            time.sleep(0.1)
        assert http.get("/readyz").json()["details"]["failing"] == ["explainer"]
        waiting = http.post("/v1/chat/completions", headers=explain, json=chat)
        assert waiting.status_code == 200
        stack.restart(roles=("explainer",))
        assert http.get("/readyz").status_code == 200
        assert _state(http, waiting.json()["explanation_metadata"]["trace_id"],
                      "complete") == "complete"
    finally:
        stack.stop()
