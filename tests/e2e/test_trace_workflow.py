"""Trace workflow (CONTRACT §2.1-2.5, §2.7, §4): lifecycle, HIF validity, cancel, SSE, TTL.

Every test opens its own traces; none depends on another's order.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pytest_sidecar import Evidence, HifValidator, SidecarConfig, Traces
from pytest_sidecar.client import SidecarClient, SseEvent, parse_sse
from pytest_sidecar.contracts.lifecycle import order_errors, status_errors
from pytest_sidecar.fixtures.stack import StackFactory
from pytest_sidecar.outcomes import SkipReason, insufficient_data, skip
from pytest_sidecar.target import Target
from pytest_sidecar.vocabulary.defaults import DEFAULT_FEATURESET
from pytest_sidecar.vocabulary.states import TERMINAL

pytestmark = [pytest.mark.profile("explain")]

# Long enough completions that each state lasts several polls (see docs/reference-stack.md).
SENTENCE_TOKENS, TOKEN_TOKENS, LONG_TOKENS = 60, 40, 200
POLL = 0.02


def assert_error(response: Any, status: int, code: str | None, section: str) -> None:
    """The contract's error, cited by `section`: exact status, JSON {code, message}, and
    the code when the contract names one (None: it fixes only the status)."""
    assert response.status_code == status, (
        f"{section}: expected {status} {code or ''}, got {response.status_code}: "
        f"{response.text[:200]}")
    body = response.json()
    if code is not None:
        assert body.get("code") == code, f"{section}: expected code {code}, got {body}"
    assert isinstance(body.get("message"), str) and body["message"], (
        f"§2: an error body without a message: {body}")


def assert_monotonic(states: list[str]) -> None:
    errors = order_errors(states)
    assert not errors, f"§2.2: states went backwards or are unknown ({errors}): {states}"


@pytest.mark.clause("§2.2/states", "§2.3/status-object", "§2.4/complete",
                    "§4/hif-schema", "§4/hif-invariants", "§4/token-outputs")
@pytest.mark.needs("chat", "explain")
@pytest.mark.parametrize("granularity,max_tokens", [("sentence", SENTENCE_TOKENS),
                                                    ("token", TOKEN_TOKENS)])
def test_lifecycle_reaches_complete_with_a_valid_graph(
        granularity: str, max_tokens: int, gateway: SidecarClient, traces: Traces,
        hif_validator: HifValidator, evidence: Evidence) -> None:
    run = traces.complete(granularity=granularity, max_tokens=max_tokens)
    body = run.response.json()

    seen = [o.state for o in run.timeline.observations]
    assert_monotonic(seen)
    progress = [o.progress for o in run.timeline.observations]
    status = run.status
    problems = status_errors(status)
    assert not problems, f"§2.3: the status object: {problems}"

    assert status.get("granularity") == granularity or status.get("granularity_downgraded"), \
        f"§2.3: status granularity {status.get('granularity')!r}, asked {granularity!r}"
    graph = gateway.graph(run.trace_id)
    assert graph.status_code == 200, f"§2.4: graph of a complete trace: {graph.text[:200]}"
    doc = graph.json()
    errors = hif_validator.errors_v1(
        doc, granularity=status.get("granularity"),
        granularity_downgraded=bool(status.get("granularity_downgraded")),
        output_tokens=body.get("usage", {}).get("completion_tokens"))
    assert not errors, f"§4: {errors[:10]}"
    evidence.record(**run.timeline.summary(), sequence=list(dict.fromkeys(seen)),
                    nodes=len(doc["nodes"]), incidences=len(doc["incidences"]),
                    completion_tokens=body.get("usage", {}).get("completion_tokens"),
                    graph_granularity=doc["meta"].get("granularity"),
                    downgraded=bool(status.get("granularity_downgraded")),
                    progress=sorted(set(filter(None, progress))))


def metadata_problems(meta: Any, trace_id: str, granularity: str, featureset: str) -> list[str]:
    """What breaks §2.1's explanation_metadata of a chat that opened `trace_id`."""
    if not isinstance(meta, dict):
        return [f"the explained chat's body has no explanation_metadata ({meta!r})"]
    wanted = {"trace_id": trace_id, "status": "queued", "granularity": granularity,
              "featureset": featureset, "stream_endpoint": f"/v1/traces/{trace_id}/stream"}
    problems = [f"explanation_metadata.{key} is {meta.get(key)!r}, not {value!r}"
                for key, value in wanted.items() if meta.get(key) != value]
    if "estimated_wait" not in meta:
        problems.append("explanation_metadata has no estimated_wait")
    return problems


@pytest.mark.clause("§2.1/metadata")
@pytest.mark.needs("chat", "explain")
@pytest.mark.parametrize("granularity,features", [("sentence", None), ("token", "sae-custom-1")])
def test_an_explained_chat_carries_its_explanation_metadata(
        granularity: str, features: str | None, gateway: SidecarClient, traces: Traces,
        evidence: Evidence) -> None:
    """Judged on the answer alone (the trace need not finish): the trace it opened, queued,
    its granularity and feature set (sae-gpt4-2m when none was asked for), its stream."""
    opened = traces.open(granularity=granularity, features=features)
    meta = opened.response.json().get("explanation_metadata")
    problems = metadata_problems(meta, opened.trace_id, granularity,
                                 features or DEFAULT_FEATURESET)
    assert not problems, f"§2.1: {'; '.join(problems)} (trace learnt from {opened.via})"
    assert opened.response.headers.get("x-trace-id") == opened.trace_id, (
        "§2: the x-trace-id header is not the trace opened")
    evidence.record(trace_id=opened.trace_id, metadata=meta)


@pytest.mark.clause("§2.4/not-ready")
@pytest.mark.needs("chat", "explain")
def test_graph_is_404_until_the_trace_is_complete(gateway: SidecarClient, traces: Traces,
                                                  sidecar_config: SidecarConfig,
                                                  evidence: Evidence) -> None:
    trace_id = traces.open(granularity="token", max_tokens=80).trace_id
    not_ready, deadline = 0, time.monotonic() + sidecar_config.trace_deadline
    while time.monotonic() < deadline:
        # The graph first, then the status: a graph served means the trace was complete
        # before the status read, so that read cannot say otherwise (states never go back).
        graph = gateway.graph(trace_id)
        state = gateway.status(trace_id).json().get("state")
        if state in ("queued", "running", "partial"):
            assert graph.status_code != 200, f"§2.4: graph served while the trace was {state}"
            assert_error(graph, 404, "graph_not_ready", "§2.4")
            not_ready += 1
        elif state == "complete":
            if graph.status_code != 200:  # it completed between the two reads: read again
                graph = gateway.graph(trace_id)
            assert graph.status_code == 200, f"§2.4: complete but graph {graph.status_code}"
            break
        else:
            pytest.fail(f"§2.4: trace {trace_id} ended {state} before its graph was ready",
                        pytrace=False)
        time.sleep(POLL)
    else:
        traces.never_ended(trace_id, sidecar_config.trace_deadline, gateway)
    if not not_ready:
        insufficient_data("graph reads before completion (the trace finished first)", 0, 1)
    evidence.record(trace_id=trace_id, graph_not_ready_answers=not_ready)


CANCEL_ATTEMPTS = 3
QUEUED_CANCEL_WATCH_S = 1.5  # a canceled trace the explainer picked up anyway shows by then


@pytest.mark.clause("§2.7/cancel", "§2.4/terminal")
@pytest.mark.needs("chat", "explain", "cancel")
def test_cancel_mid_way_never_produces_a_graph(gateway: SidecarClient, traces: Traces,
                                               evidence: Evidence) -> None:
    # Longer completions each time, until a cancel lands before the explainer finishes.
    for attempt in range(CANCEL_ATTEMPTS):
        trace_id = traces.open(granularity="token", max_tokens=LONG_TOKENS * 2 ** attempt
                               ).trace_id
        running = traces.wait(trace_id, predicate=lambda s: s.get("state") != "queued",
                              interval=POLL, what="a state past queued")
        canceled = gateway.cancel(trace_id)
        if canceled.status_code != 409:
            break
        # 409 is for a trace already over (§2.7): one still going must have been canceled.
        after = gateway.status(trace_id).json().get("state")
        assert after in TERMINAL, (
            f"§2.7: DELETE of a {after} trace answered 409 (only a terminal trace is not "
            "cancelable)")
    else:
        insufficient_data(f"traces still running when a cancel arrived "
                          f"(explainer finished {CANCEL_ATTEMPTS} in a row)", 0, 1)
    assert canceled.status_code == 202, f"§2.7: cancel answered {canceled.text[:200]}"
    assert canceled.json().get("state") == "canceled", f"§2.7: {canceled.text[:200]}"
    # Watch it for a while: it must stay canceled and never publish a graph.
    watched = gateway.poll_until(trace_id, lambda s: s.get("state") != "canceled", 1.0, 0.1)
    assert not watched.reached, f"§2.7: canceled trace moved on: {watched.states}"
    assert watched.last and not watched.last.get("s3_key"), \
        f"§2.7: a canceled trace names an artifact: {watched.last}"
    assert_error(gateway.graph(trace_id), 409, "trace_canceled", "§2.4")
    evidence.record(trace_id=trace_id, canceled_in_state=(running.last or {}).get("state"),
                    canceled_at_progress=(running.last or {}).get("progress"),
                    watched_s=round(watched.elapsed, 2),
                    polls_after_cancel=len(watched.observations))


@pytest.mark.clause("§2.7/cancel")
@pytest.mark.needs("chat", "explain", "cancel")
def test_a_trace_canceled_right_after_submit_stays_canceled(
        gateway: SidecarClient, traces: Traces, evidence: Evidence) -> None:
    """Canceled at once, while most likely still queued: a queued trace is canceled as
    surely as a running one, so it never starts and never completes. Needs no explainer."""
    trace_id = traces.open(granularity="token", max_tokens=LONG_TOKENS).trace_id
    canceled = gateway.cancel(trace_id)
    if canceled.status_code == 409:
        state = gateway.status(trace_id).json().get("state")
        assert state in TERMINAL, (
            f"§2.7: DELETE of a {state} trace answered 409 (only a terminal trace is not "
            "cancelable)")
        insufficient_data("traces still going when a cancel arrived right after submit", 0, 1)
    assert canceled.status_code == 202, (
        f"§2.7: DELETE right after submit answered {canceled.status_code}: "
        f"{canceled.text[:200]}")
    assert canceled.json().get("state") == "canceled", (
        f"§2.7: the 202 says state {canceled.json().get('state')!r}, not canceled")
    watched = gateway.poll_until(trace_id, lambda s: s.get("state") != "canceled",
                                 QUEUED_CANCEL_WATCH_S, 0.1)
    assert not watched.reached, (
        f"§2.7: a trace canceled right after submit moved on: {watched.states}")
    evidence.record(trace_id=trace_id, watched_s=round(watched.elapsed, 2),
                    polls=len(watched.observations))


GATEWAY_IDS = 3  # traces opened without a client id, to see how the gateway makes ids
MIN_ID_CHARACTERS = 11  # 11 base-62 characters hold 65 bits: fewer cannot hold 64
MAX_SHARED_TAIL = 4  # ids made a moment apart that differ in no more are a counter


@pytest.mark.clause("§2/trace-ids")
@pytest.mark.needs("chat", "explain")
def test_trace_ids_the_gateway_makes_are_unguessable(gateway: SidecarClient,
                                                     evidence: Evidence) -> None:
    """Ids the gateway chooses (no x-trace-id sent): distinct, never all zeros, long
    enough to hold 64 random bits. A guessable id is what isolation (§3) must then save."""
    from pytest_sidecar.client import trace_id_from

    ids = []
    for _ in range(GATEWAY_IDS):
        response = gateway.explain()
        assert response.status_code == 200, (
            f"§2.1: an explained chat got {response.status_code}: {response.text[:160]}")
        trace_id, via = trace_id_from(response)
        assert trace_id, "§2.1: an explained chat named no trace"
        ids.append(trace_id)
    assert len(set(ids)) == len(ids), f"§2: the gateway made the same trace id twice: {ids}"
    # Characters the ids share from the start (a clock or counter prefix).
    shared = next((n for n, chars in enumerate(zip(*ids, strict=False)) if len(set(chars)) > 1),
                  min(map(len, ids)))
    assert min(len(i) for i in ids) - shared > MAX_SHARED_TAIL, (
        f"§2: trace ids {ids} differ only in their last {min(len(i) for i in ids) - shared} "
        "characters: each one gives the next away")
    for trace_id in ids:
        characters = [c for c in trace_id if c.isalnum()]
        assert set(characters) - {"0"}, f"§2: trace id {trace_id!r} is all zeros"
        assert len(characters) >= MIN_ID_CHARACTERS, (
            f"§2: trace id {trace_id!r} has {len(characters)} letters and digits, too few "
            "for 64 random bits")
    evidence.record(ids=ids, via=via)


@pytest.mark.clause("§2.7/terminal")
@pytest.mark.needs("chat", "explain", "cancel")
def test_cancel_of_a_terminal_trace_is_409(gateway: SidecarClient, traces: Traces,
                                           evidence: Evidence) -> None:
    run = traces.complete(granularity="sentence")
    assert_error(gateway.cancel(run.trace_id), 409, "trace_not_cancelable", "§2.7")
    after = gateway.status(run.trace_id).json().get("state")
    assert after == "complete", f"§2.7: a refused cancel changed the trace to {after}"
    assert gateway.graph(run.trace_id).status_code == 200, "§2.7: the graph is gone"
    evidence.record(trace_id=run.trace_id, cancel_status=409)


@pytest.mark.clause("§2.5/events", "§2.5/ids")
@pytest.mark.needs("chat", "explain", "trace_stream")
def test_sse_stream_delivers_state_changes_and_a_terminal_event(
        gateway: SidecarClient, traces: Traces, sidecar_config: SidecarConfig,
        evidence: Evidence) -> None:
    trace_id = traces.open(granularity="token", max_tokens=TOKEN_TOKENS).trace_id
    started = time.monotonic()
    items = traces.stream(trace_id, gateway)
    events = [item for item in items if isinstance(item, SseEvent)]
    updates = [e for e in events if e.event == "status_update"]
    assert updates, f"§2.5: no status_update events: {items[:5]}"
    states = [e.json().get("state") for e in updates]
    assert_monotonic(states)
    assert states[-1] == "complete", f"§2.5: last status_update {states[-1]}: {states}"
    assert events[-1].event == "complete" and events[-1].json().get("trace_id") == trace_id, \
        f"§2.5: last event {events[-1]}"
    ids = [e.id for e in events]
    assert None not in ids, "§2.5: an event has no id"
    evidence.record(trace_id=trace_id, events=len(events), states=list(dict.fromkeys(states)),
                    ids=ids, stream_s=round(time.monotonic() - started, 3))


@pytest.mark.clause("§2.5/events")
@pytest.mark.needs("chat", "explain", "trace_stream", "cancel")
def test_the_stream_of_a_canceled_trace_ends_with_an_error_event(
        gateway: SidecarClient, traces: Traces, sidecar_config: SidecarConfig,
        evidence: Evidence) -> None:
    """A trace that ends otherwise than complete ends its stream with `event: error`
    carrying {trace_id, state, error}, never with `complete`."""
    trace_id = traces.open(granularity="token", max_tokens=LONG_TOKENS).trace_id
    canceled = gateway.cancel(trace_id)
    if canceled.status_code != 202:
        insufficient_data("traces still going when a cancel arrived right after submit", 0, 1)
    items = traces.stream(trace_id, gateway)
    events = [item for item in items if isinstance(item, SseEvent)]
    assert events, f"§2.5: the stream of a canceled trace carried no event: {items[:5]}"
    last = events[-1]
    assert last.event == "error", (
        f"§2.5: the stream of a canceled trace ended with event {last.event!r}, not error")
    data = last.json()
    assert data.get("trace_id") == trace_id and data.get("state") == "canceled" and \
        "error" in data, f"§2.5: the error event's data is {data}, not {{trace_id, state, error}}"
    evidence.record(trace_id=trace_id, events=[e.event for e in events], data=data)


@pytest.mark.clause("§2.4/gzip")
@pytest.mark.needs("chat", "explain")
def test_the_graph_honours_accept_encoding_gzip(gateway: SidecarClient, traces: Traces,
                                                evidence: Evidence) -> None:
    trace_id = traces.complete().trace_id
    plain = gateway.graph(trace_id, headers={"accept-encoding": "identity"})
    packed = gateway.graph(trace_id, headers={"accept-encoding": "gzip"})
    assert plain.status_code == packed.status_code == 200, (
        f"§2.4: the graph of a complete trace answered {plain.status_code} (identity) and "
        f"{packed.status_code} (gzip)")
    encoding = packed.headers.get("content-encoding", "identity")
    assert encoding == "gzip", f"§2.4: asked for gzip, got content-encoding {encoding!r}"
    assert packed.json() == plain.json(), "§2.4: the gzip graph differs from the plain one"
    evidence.record(trace_id=trace_id, plain_bytes=len(plain.content),
                    gzip_bytes=int(packed.headers.get("content-length") or 0))


KEEPALIVE_S = 15.0  # §2.5: a comment at least this often on a quiet stream
# Streams tried in turn until one has a quiet stretch long enough for a comment: a short
# one first, then one whose explanation outlasts the keep-alive period; a sentence one
# last, since §5 may downgrade token work while a backlog drains.
KEEPALIVE_STREAMS = (("token", LONG_TOKENS), ("token", 1000), ("sentence", 2048))


def timed_stream(gateway: SidecarClient, trace_id: str, limit_s: float
                 ) -> list[tuple[float, str]]:
    """(seconds since the request, 'comment' or the event name) for each stream item."""
    timed: list[tuple[float, str]] = []
    started = time.monotonic()
    timeout = httpx.Timeout(gateway.timeout, read=KEEPALIVE_S + 5)
    with gateway.http.stream("GET", f"/v1/traces/{trace_id}/stream",
                             timeout=timeout) as response:
        assert response.status_code == 200, f"§2.5: the stream answered {response.status_code}"
        for item in parse_sse(response.iter_lines()):
            timed.append((time.monotonic() - started,
                          "comment" if isinstance(item, str) else item.event))
            if time.monotonic() - started > limit_s:
                break
    return timed


@pytest.fixture(scope="module")
def keepalive_target(sidecar_target: Target, stack_factory: StackFactory) -> Iterator[Target]:
    """The target; in embedded mode a dedicated stack with keep-alives every half second,
    so a stream of a few seconds shows them without slowing the shared stack."""
    if sidecar_target.origin != "embedded":
        yield sidecar_target
        return
    target = stack_factory(SSE_KEEPALIVE_SECONDS="0.5")
    yield target
    stack_factory.stop(target)


@pytest.mark.clause("§2.5/keepalive")
@pytest.mark.timing
@pytest.mark.needs("chat", "explain", "trace_stream")
def test_a_quiet_stream_gets_keep_alive_comments(keepalive_target: Target,
                                                 sidecar_config: SidecarConfig,
                                                 evidence: Evidence) -> None:
    target = keepalive_target
    token = target.tenants["a"].tokens.write if target.tenants else None
    with SidecarClient(target.url, token, sidecar_config.timeout) as client:
        own = Traces(target, sidecar_config, lambda: client)
        found = keepalive_streams(own, client, sidecar_config.trace_deadline)
    trace_id, granularity, max_tokens, timed, longest, comments = found
    if not comments:
        insufficient_data(f"keep-alive comments (no stream had a quiet stretch: the longest "
                          f"was {longest:.1f}s)", 0, 1)
    evidence.record(trace_id=trace_id, granularity=granularity, max_tokens=max_tokens,
                    items=len(timed), comments=comments, longest_quiet_s=round(longest, 2),
                    stream_s=round(timed[-1][0] if timed else 0.0, 2))


def keepalive_streams(traces: Traces, client: SidecarClient, deadline: float
                      ) -> tuple[str, str, int, list[tuple[float, str]], float, int]:
    """Stream traces in turn until one shows a comment; fails on a gap over 15 s."""
    for granularity, max_tokens in KEEPALIVE_STREAMS:
        trace_id = traces.open(granularity=granularity, max_tokens=max_tokens).trace_id
        timed = timed_stream(client, trace_id, deadline)
        stamps = [0.0, *(t for t, _ in timed)]
        longest = max(b - a for a, b in itertools.pairwise(stamps))
        assert longest <= KEEPALIVE_S + 1, (
            f"§2.5: {longest:.1f}s without an event or a comment on {trace_id}")
        comments = sum(1 for _, kind in timed if kind == "comment")
        if comments:
            break
    return trace_id, granularity, max_tokens, timed, longest, comments


@pytest.mark.clause("§2.1/client-trace-id")
@pytest.mark.needs("chat", "explain", "client_trace_id")
def test_a_reused_client_trace_id_is_409_and_never_overwrites(
        gateway: SidecarClient, evidence: Evidence) -> None:
    trace_id = "e2e-" + uuid.uuid4().hex
    first = gateway.explain(trace_id=trace_id, granularity="sentence")
    assert first.status_code == 200, f"§2.1: {first.status_code} {first.text[:200]}"
    assert first.headers.get("x-trace-id") == trace_id, \
        f"§2.1: x-trace-id {first.headers.get('x-trace-id')!r}, the client chose {trace_id!r}"
    status = gateway.status(trace_id)
    assert status.status_code == 200, f"§2.1: the client-chosen id is unknown: {status.text}"
    second = gateway.explain(trace_id=trace_id, granularity="token")
    assert_error(second, 409, "trace_exists", "§2.1")
    kept = gateway.status(trace_id).json().get("granularity")
    assert kept == "sentence", f"§2.1: the second request overwrote the trace ({kept})"
    assert_error(gateway.explain(trace_id="not a valid id!"), 400, None, "§2.1")
    evidence.record(trace_id=trace_id, reuse_status=second.status_code,
                    kept_granularity=kept)


@pytest.mark.needs("chat", "explain")  # the explain headers are the explain capability's
@pytest.mark.parametrize("header,value,code", [
    ("x-explain-mode", "graph", "invalid_explain_mode"),
    ("x-explain-granularity", "paragraph", None),  # §2.1 names no code for these two
    ("x-explain-budget", "0", None),
])
@pytest.mark.clause("§2.1/explain-mode", "§2.1/granularity", "§2.1/budget")
def test_invalid_explain_headers_are_400(header: str, value: str, code: str | None,
                                         gateway: SidecarClient, evidence: Evidence) -> None:
    response = gateway.chat(headers={"x-explain-mode": "hypergraph", header: value})
    assert_error(response, 400, code, "§2.1")
    evidence.record(header=header, value=value, status=400, code=code)


@pytest.mark.clause("§2.1/completion", "§2.1/metadata", "§2.3/unknown")
@pytest.mark.needs("chat", "explain")
def test_a_chat_without_explain_mode_opens_no_trace(gateway: SidecarClient,
                                                    evidence: Evidence) -> None:
    response = gateway.chat()
    assert response.status_code == 200, f"§2.1: a plain chat answered {response.status_code}"
    body = response.json()
    assert body.get("object") == "chat.completion" and body["choices"][0]["message"][
        "content"], f"§2.1: not a chat completion: {str(body)[:200]}"
    assert "explanation_metadata" not in body, "§2.1: metadata without x-explain-mode"
    echoed = response.headers.get("x-trace-id")
    assert echoed, "§2: the response has no x-trace-id"
    assert_error(gateway.status(echoed), 404, "trace_not_found", "§2.3")
    evidence.record(completion_id=body["id"], x_trace_id=echoed, trace_status=404)


@pytest.mark.clause("§2.1/stream", "§4/token-outputs")
@pytest.mark.needs("chat_stream", "explain")
def test_a_streamed_chat_opens_a_trace_from_its_header(
        gateway: SidecarClient, traces: Traces, hif_validator: HifValidator,
        evidence: Evidence) -> None:
    response = gateway.explain(granularity="token", stream=True)
    assert response.status_code == 200, (
        f"§2.1: a streamed explained chat got {response.status_code}")
    kind = response.headers.get("content-type", "")
    assert kind.startswith("text/event-stream"), f"§2.1: a streamed chat answered {kind!r}"
    # `data:` with or without the space SSE allows after the colon.
    data = [item.data for item in parse_sse(iter(response.text.splitlines()))
            if isinstance(item, SseEvent)]
    assert data and data[-1] == "[DONE]", (
        f"§2.1: the stream does not end with [DONE]: {data[-3:]}")
    import json

    chunks = [json.loads(d) for d in data[:-1]]
    # The token count only when the stream reports usage: upstreams may put several
    # tokens in one chunk, so chunks are no count of tokens.
    usage: dict[str, Any] = next((c["usage"] for c in reversed(chunks) if c.get("usage")), {})
    tokens = usage.get("completion_tokens")
    trace_id = response.headers.get("x-trace-id")
    assert trace_id, "§2.1: a streamed explained chat has no x-trace-id header"
    timeline = traces.wait(trace_id)
    status = timeline.last or {}
    assert status.get("state") == "complete", f"§2.2: the streamed chat's trace {status}"
    doc = gateway.graph(trace_id).json()
    errors = hif_validator.errors_v1(
        doc, granularity=status.get("granularity"),
        granularity_downgraded=bool(status.get("granularity_downgraded")),
        output_tokens=tokens)
    assert not errors, f"§4: {errors[:10]}"
    evidence.record(trace_id=trace_id, chunks=len(chunks), content_tokens=tokens,
                    **{k: v for k, v in timeline.summary().items() if k != "trace_id"})


@pytest.fixture(scope="module")
def short_ttl_target(sidecar_target: Target, stack_factory: StackFactory) -> Iterator[Target]:
    """A target whose TTL is short enough to wait out: the declared one, or (embedded
    mode) a dedicated reference stack started with TRACE_TTL_SECONDS=2."""
    if "short_ttl" in sidecar_target.capabilities:
        yield sidecar_target
        return
    if sidecar_target.origin == "embedded":
        target = stack_factory(TRACE_TTL_SECONDS="2")
        yield target
        stack_factory.stop(target)
        return
    skip(SkipReason.NOT_DECLARED, "the target declares no short trace TTL",
         "set trace_ttl_seconds (<= 60) in the target file", "§2.2")


@pytest.mark.clause("§2.2/ttl", "§2.4/expired")
@pytest.mark.needs("chat", "explain")
def test_graph_is_410_after_the_ttl(short_ttl_target: Target, sidecar_config: SidecarConfig,
                                    evidence: Evidence) -> None:
    ttl = short_ttl_target.trace_ttl_seconds
    assert ttl is not None, "§2.2: the short-TTL target declares no trace_ttl_seconds"
    token = short_ttl_target.tenants["a"].tokens.write if short_ttl_target.tenants else None
    with SidecarClient(short_ttl_target.url, token, sidecar_config.timeout) as client:
        own = Traces(short_ttl_target, sidecar_config, lambda: client)
        trace_id = own.complete(client, granularity="sentence").trace_id
        assert client.graph(trace_id).status_code == 200, "§2.4: no graph for a complete trace"
        completed = time.monotonic()
        expired = client.poll_until(trace_id, lambda s: s.get("state") == "expired",
                                    ttl + sidecar_config.trace_deadline, 0.1)
        assert expired.reached, (f"§2.2: still {expired.states} "
                                 f"{ttl + sidecar_config.trace_deadline:g}s after completion "
                                 f"with a TTL of {ttl:g}s")
        waited = time.monotonic() - completed
        assert waited >= ttl * 0.5, f"§2.2: expired after {waited:.2f}s, TTL is {ttl}s"
        assert_error(client.graph(trace_id), 410, "trace_expired", "§2.4")
    evidence.record(trace_id=trace_id, ttl_s=ttl, expired_after_s=round(waited, 2))
