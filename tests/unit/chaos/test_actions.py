"""A chaos flag written just before a request is in force for that request (docs/
contract.md §7): the reference stack reads its control file on use, not on a poll, so a
runner that writes a flag and submits at once is never let through in the gap."""

from __future__ import annotations

import time

import httpx
import pytest

from pytest_sidecar.chaos.actions import inject_flag, rollback_flag
from pytest_sidecar.fixtures.stack import StackFactory

pytestmark = pytest.mark.disruptive
TERMINAL = ("complete", "failed", "canceled", "expired")


def settled(client: httpx.Client, trace_id: str, deadline_s: float = 20.0) -> str:
    ends = time.monotonic() + deadline_s
    while time.monotonic() < ends:
        state = str(client.get(f"/v1/traces/{trace_id}/status").json()["state"])
        if state in TERMINAL:
            return state
        time.sleep(0.02)
    raise AssertionError(f"trace {trace_id} did not settle in {deadline_s}s")


def test_a_flag_written_then_a_chat_submitted_at_once_fails_that_trace(
        stack_factory: StackFactory) -> None:
    target = stack_factory()
    control = str(target.chaos_control)
    token = target.tenants["a"].tokens.write
    chat = {"model": target.model, "messages": [{"role": "user", "content": "flag?"}]}
    states: dict[str, list[str]] = {"on": [], "off": []}
    with httpx.Client(base_url=target.url, timeout=10,
                      headers={"authorization": f"Bearer {token}",
                               "x-explain-mode": "hypergraph"}) as client:
        try:
            for _ in range(20):
                for flag in ("on", "off"):
                    if flag == "on":
                        inject_flag(control, "fail-attribution", {"mode": "fail"}, 30)
                    else:
                        rollback_flag(control, "fail-attribution")
                    answer = client.post("/v1/chat/completions", json=chat)  # at once
                    assert answer.status_code == 200, answer.text
                    trace_id = answer.json()["explanation_metadata"]["trace_id"]
                    states[flag].append(settled(client, trace_id))
        finally:
            rollback_flag(control, "fail-attribution")
    assert states["on"] == ["failed"] * 20, states["on"]
    assert states["off"] == ["complete"] * 20, states["off"]
