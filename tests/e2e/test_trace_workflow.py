"""Trace workflow (CONTRACT §2.1-2.5, §2.7, §4): lifecycle, HIF validity, cancel, SSE, TTL.

Every test opens its own traces; none depends on another's order.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from pytest_sidecar.client import SidecarClient, SseEvent, is_terminal
from pytest_sidecar.outcomes import SkipReason, skip
from pytest_sidecar.target import Target

pytestmark = [pytest.mark.profile("explain")]

RANK = {"queued": 0, "running": 1, "partial": 2, "complete": 3, "failed": 3, "canceled": 3,
        "expired": 4}
# Long enough completions that each state lasts several polls (see docs/reference-stack.md).
SENTENCE_TOKENS, TOKEN_TOKENS, LONG_TOKENS = 60, 40, 200
POLL = 0.02


def assert_error(response: Any, status: int, code: str) -> None:
    """The contract's error: exact status, JSON {code, message}."""
    assert response.status_code == status, f"{response.status_code}: {response.text[:200]}"
    body = response.json()
    assert body.get("code") == code, body
    assert isinstance(body.get("message"), str) and body["message"]


def assert_monotonic(states: list[str]) -> None:
    ranks = [RANK[s] for s in states]
    assert ranks == sorted(ranks), f"states went backwards: {states}"


@pytest.mark.needs("chat", "explain")
@pytest.mark.contract("§2.1", "§2.2", "§2.3", "§2.4", "§4")
@pytest.mark.parametrize("granularity,max_tokens", [("sentence", SENTENCE_TOKENS),
                                                    ("token", TOKEN_TOKENS)])
def test_lifecycle_reaches_complete_with_a_valid_graph(
        granularity: str, max_tokens: int, gateway: SidecarClient, explain_and_wait: Any,
        hif_validator: Any, evidence: Any) -> None:
    run = explain_and_wait(granularity=granularity, max_tokens=max_tokens)
    body = run.response.json()
    meta = body["explanation_metadata"]
    assert meta["status"] == "queued"
    assert meta["granularity"] == granularity
    assert meta["stream_endpoint"] == f"/v1/traces/{run.trace_id}/stream"
    assert run.response.headers["x-trace-id"] == run.trace_id, "header and metadata disagree"

    seen = ["queued", *(o.state for o in run.timeline.observations)]
    assert_monotonic(seen)
    assert list(dict.fromkeys(seen)) == ["queued", "running", "complete"], seen
    progress = [o.progress for o in run.timeline.observations]
    assert progress == sorted(progress) and progress[-1] == 100, progress

    status = run.status
    assert status["granularity"] == granularity or status["granularity_downgraded"]
    graph = gateway.graph(run.trace_id)
    assert graph.status_code == 200, graph.text[:200]
    doc = graph.json()
    errors = hif_validator.errors_v1(
        doc, granularity=status["granularity"],
        granularity_downgraded=bool(status.get("granularity_downgraded")),
        output_tokens=body["usage"]["completion_tokens"])
    assert not errors, errors[:10]
    assert doc["meta"]["version"] == "hif-1"
    evidence.record(**run.timeline.summary(), sequence=list(dict.fromkeys(seen)),
                    nodes=len(doc["nodes"]),
                    incidences=len(doc["incidences"]),
                    completion_tokens=body["usage"]["completion_tokens"],
                    graph_granularity=doc["meta"]["granularity"])


@pytest.mark.needs("chat", "explain")
@pytest.mark.contract("§2.4")
def test_graph_is_404_until_the_trace_is_complete(gateway: SidecarClient,
                                                  sidecar_config: Any, evidence: Any) -> None:
    response = gateway.explain(granularity="token", max_tokens=80)
    assert response.status_code == 200
    trace_id = response.json()["explanation_metadata"]["trace_id"]
    not_ready, deadline = 0, time.monotonic() + sidecar_config.trace_deadline
    while time.monotonic() < deadline:
        state = gateway.status(trace_id).json()["state"]
        graph = gateway.graph(trace_id)
        if state in ("queued", "running", "partial"):
            # The graph may turn ready between the two reads; it must never be a 200
            # while the status still says not complete *before* it.
            if graph.status_code != 200:
                assert_error(graph, 404, "graph_not_ready")
                not_ready += 1
        elif state == "complete":
            assert graph.status_code == 200
            break
        else:
            pytest.fail(f"trace ended {state}")
        time.sleep(POLL)
    else:
        pytest.fail(f"trace {trace_id} not complete within {sidecar_config.trace_deadline}s")
    assert not_ready >= 1, "never observed the graph before completion"
    evidence.record(trace_id=trace_id, graph_not_ready_answers=not_ready)


@pytest.mark.needs("chat", "explain", "cancel")
@pytest.mark.contract("§2.7")
def test_cancel_mid_way_never_produces_a_graph(gateway: SidecarClient, sidecar_config: Any,
                                               evidence: Any) -> None:
    response = gateway.explain(granularity="token", max_tokens=LONG_TOKENS)
    trace_id = response.json()["explanation_metadata"]["trace_id"]
    running = gateway.poll_until(trace_id, lambda s: s["state"] != "queued",
                                 sidecar_config.trace_deadline, POLL)
    assert running.last and running.last["state"] == "running", running.states
    canceled = gateway.cancel(trace_id)
    assert canceled.status_code == 202, canceled.text[:200]
    assert canceled.json()["state"] == "canceled"
    # Watch it for a while: it must stay canceled and never publish a graph.
    watched = gateway.poll_until(trace_id, lambda s: s["state"] != "canceled", 1.0, 0.1)
    assert not watched.reached, f"canceled trace moved on: {watched.states}"
    assert watched.last and watched.last["s3_key"] is None
    assert_error(gateway.graph(trace_id), 409, "trace_canceled")
    evidence.record(trace_id=trace_id, canceled_at_progress=running.last["progress"],
                    watched_s=round(watched.elapsed, 2),
                    polls_after_cancel=len(watched.observations))


@pytest.mark.needs("chat", "explain", "cancel")
@pytest.mark.contract("§2.7")
def test_cancel_of_a_terminal_trace_is_409(gateway: SidecarClient, explain_and_wait: Any,
                                           evidence: Any) -> None:
    run = explain_and_wait(granularity="sentence")
    assert run.status["state"] == "complete"
    assert_error(gateway.cancel(run.trace_id), 409, "trace_not_cancelable")
    assert gateway.status(run.trace_id).json()["state"] == "complete"
    assert gateway.graph(run.trace_id).status_code == 200
    evidence.record(trace_id=run.trace_id, cancel_status=409)


@pytest.mark.needs("chat", "explain", "trace_stream")
@pytest.mark.contract("§2.5")
def test_sse_stream_delivers_state_changes_and_a_terminal_event(
        gateway: SidecarClient, sidecar_config: Any, evidence: Any) -> None:
    response = gateway.explain(granularity="token", max_tokens=TOKEN_TOKENS)
    trace_id = response.json()["explanation_metadata"]["trace_id"]
    started = time.monotonic()
    items = gateway.stream_events(trace_id, timeout=sidecar_config.trace_deadline)
    events = [item for item in items if isinstance(item, SseEvent)]
    updates = [e for e in events if e.event == "status_update"]
    assert updates, f"no status_update events: {items[:5]}"
    states = [e.json()["state"] for e in updates]
    assert_monotonic(states)
    assert "running" in states and states[-1] == "complete", states
    assert events[-1].event == "complete" and events[-1].json() == {"trace_id": trace_id}
    ids = [int(e.id) for e in events if e.id is not None]
    assert len(ids) == len(events), "an event has no id"
    assert ids == sorted(set(ids)), f"event ids not increasing: {ids}"
    evidence.record(trace_id=trace_id, events=len(events), states=list(dict.fromkeys(states)),
                    stream_s=round(time.monotonic() - started, 3))


@pytest.mark.needs("chat", "explain", "client_trace_id")
@pytest.mark.contract("§2.1")
def test_a_reused_client_trace_id_is_409_and_never_overwrites(
        gateway: SidecarClient, evidence: Any) -> None:
    trace_id = "e2e-" + uuid.uuid4().hex
    first = gateway.explain(trace_id=trace_id, granularity="sentence")
    assert first.status_code == 200
    assert first.json()["explanation_metadata"]["trace_id"] == trace_id
    assert first.headers["x-trace-id"] == trace_id
    second = gateway.explain(trace_id=trace_id, granularity="token")
    assert_error(second, 409, "trace_exists")
    status = gateway.status(trace_id).json()
    assert status["granularity"] == "sentence", "the second request overwrote the trace"
    assert_error(gateway.explain(trace_id="not a valid id!"), 400, "invalid_trace_id")
    evidence.record(trace_id=trace_id, reuse_status=second.status_code,
                    kept_granularity=status["granularity"])


@pytest.mark.needs("chat")
@pytest.mark.contract("§2.1")
@pytest.mark.parametrize("header,value,code", [
    ("x-explain-mode", "graph", "invalid_explain_mode"),
    ("x-explain-granularity", "paragraph", "invalid_granularity"),
    ("x-explain-budget", "0", "invalid_budget"),
])
def test_invalid_explain_headers_are_400(header: str, value: str, code: str,
                                         gateway: SidecarClient, evidence: Any) -> None:
    response = gateway.chat(headers={"x-explain-mode": "hypergraph", header: value})
    assert_error(response, 400, code)
    evidence.record(header=header, value=value, status=400, code=code)


@pytest.mark.needs("chat", "explain")
@pytest.mark.contract("§2.1")
def test_a_chat_without_explain_mode_opens_no_trace(gateway: SidecarClient,
                                                    evidence: Any) -> None:
    response = gateway.chat()
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["content"]
    assert "explanation_metadata" not in body
    echoed = response.headers["x-trace-id"]
    assert_error(gateway.status(echoed), 404, "trace_not_found")
    evidence.record(completion_id=body["id"], x_trace_id=echoed, trace_status=404)


@pytest.mark.needs("chat_stream", "explain")
@pytest.mark.contract("§2.1", "§4")
def test_a_streamed_chat_opens_a_trace_from_its_header(
        gateway: SidecarClient, sidecar_config: Any, hif_validator: Any, evidence: Any) -> None:
    response = gateway.explain(granularity="token", stream=True)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    data = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert data and data[-1] == "[DONE]", data[-3:]
    import json

    chunks = [json.loads(d) for d in data[:-1]]
    content = [c["choices"][0]["delta"].get("content") for c in chunks]
    tokens = sum(1 for piece in content if piece)
    trace_id = response.headers["x-trace-id"]
    timeline = gateway.poll_until(trace_id, is_terminal, sidecar_config.trace_deadline)
    assert timeline.reached and timeline.last and timeline.last["state"] == "complete", \
        timeline.states
    doc = gateway.graph(trace_id).json()
    assert not hif_validator.errors_v1(doc, granularity="token", output_tokens=tokens)
    evidence.record(trace_id=trace_id, chunks=len(chunks), content_tokens=tokens,
                    **{k: v for k, v in timeline.summary().items() if k != "trace_id"})


@pytest.fixture(scope="module")
def short_ttl_target(sidecar_target: Target, stack_factory: Any) -> Target:
    """A target whose TTL is short enough to wait out: the declared one, or (embedded
    mode) a dedicated reference stack started with TRACE_TTL_SECONDS=2."""
    if "short_ttl" in sidecar_target.capabilities:
        return sidecar_target
    if sidecar_target.origin == "embedded":
        return stack_factory(TRACE_TTL_SECONDS="2")
    skip(SkipReason.NOT_DECLARED, "the target declares no short trace TTL",
         "set trace_ttl_seconds (<= 60) in the target file", "§2.2")


@pytest.mark.needs("chat", "explain")
@pytest.mark.contract("§2.2", "§2.4")
def test_graph_is_410_after_the_ttl(short_ttl_target: Target, sidecar_config: Any,
                                    evidence: Any) -> None:
    ttl = short_ttl_target.trace_ttl_seconds
    assert ttl is not None
    token = short_ttl_target.tenants["a"].tokens.write if short_ttl_target.tenants else None
    with SidecarClient(short_ttl_target.url, token, sidecar_config.timeout) as client:
        trace_id = client.explain(granularity="sentence").json()["explanation_metadata"][
            "trace_id"]
        done = client.poll_until(trace_id, is_terminal, sidecar_config.trace_deadline, POLL)
        assert done.last and done.last["state"] == "complete", done.states
        assert client.graph(trace_id).status_code == 200
        completed = time.monotonic()
        expired = client.poll_until(trace_id, lambda s: s["state"] == "expired",
                                    ttl + sidecar_config.trace_deadline, 0.1)
        assert expired.reached, f"still {expired.states} {ttl + sidecar_config.trace_deadline}s on"
        waited = time.monotonic() - completed
        assert waited >= ttl * 0.5, f"expired after {waited:.2f}s, TTL is {ttl}s"
        assert_error(client.graph(trace_id), 410, "trace_expired")
    evidence.record(trace_id=trace_id, ttl_s=ttl, expired_after_s=round(waited, 2))
