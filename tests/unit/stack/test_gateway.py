"""The reference gateway over real HTTP: the paths the e2e spec does not reach."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_sidecar.client import SidecarClient, SseEvent, is_terminal
from pytest_sidecar.embedded import EmbeddedStack

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One reference stack for this module (small body cap to test 413 cheaply)."""
    handle = EmbeddedStack(str(tmp_path_factory.mktemp("gw")), env={"MAX_BODY_BYTES": "4096"})
    handle.ensure_started()
    try:
        yield json.loads(Path(handle.target_file).read_text())
    finally:
        handle.stop()


def client(stack: dict[str, Any], tenant: str = "a", role: str = "write") -> SidecarClient:
    return SidecarClient(stack["url"], stack["tenants"][tenant]["tokens"][role])


def error_of(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) >= {"code", "message"} and "Traceback" not in response.text
    return response.status_code, body["code"]


def test_a_budget_too_small_fails_the_trace_and_every_reader_says_so(stack: dict[str, Any]
                                                                     ) -> None:
    with client(stack) as gw:
        response = gw.explain(granularity="token", headers={"x-explain-budget": "1"})
        trace_id = response.json()["explanation_metadata"]["trace_id"]
        done = gw.poll_until(trace_id, is_terminal, 10)
        assert done.last is not None
        assert done.last == {**done.last, "state": "failed", "error": "budget_exceeded"}
        assert error_of(gw.graph(trace_id)) == (409, "trace_failed")
        events = [e for e in gw.stream_events(trace_id, 10) if isinstance(e, SseEvent)]
        assert events[-1].event == "error"
        assert events[-1].json() == {"trace_id": trace_id, "state": "failed",
                                     "error": "budget_exceeded"}


@pytest.mark.parametrize("send,expected", [
    (lambda gw: gw.http.post("/v1/chat/completions", content=b"{not json"), (400, "invalid_json")),
    (lambda gw: gw.http.post("/v1/chat/completions", json={"model": "m", "messages": []}),
     (422, "invalid_request")),
    (lambda gw: gw.http.post("/v1/chat/completions", json={**CHAT, "temperature": "hot"}),
     (422, "invalid_request")),
    (lambda gw: gw.http.post("/v1/chat/completions", json={**CHAT, "pad": "x" * 5000}),
     (413, "payload_too_large")),
    (lambda gw: gw.http.get("/v1/nowhere"), (404, "not_found")),
    (lambda gw: gw.http.put("/v1/chat/completions", json=CHAT), (405, "method_not_allowed")),
    (lambda gw: gw.http.get("/v1/traces/x/status?access_token=abc"), (400, "token_in_query")),
])
def test_bad_requests_get_the_contract_error(stack: dict[str, Any], send: Any,
                                             expected: tuple[int, str]) -> None:
    with client(stack) as gw:
        response = send(gw)
        assert error_of(response) == expected
        assert response.headers["x-request-id"] and response.headers["x-trace-id"]
        if expected[0] == 405:
            assert response.headers["allow"] == "POST"


def test_scopes_and_tenant_isolation(stack: dict[str, Any]) -> None:
    with client(stack) as owner, client(stack, "a", "read") as reader, \
            client(stack, "b", "write") as stranger:
        assert error_of(reader.chat()) == (403, "missing_scope")
        trace_id = owner.explain().json()["explanation_metadata"]["trace_id"]
        assert reader.status(trace_id).status_code == 200
        foreign, missing = stranger.status(trace_id), stranger.status("no-such-trace")
        assert error_of(foreign) == error_of(missing) == (404, "trace_not_found")
        assert foreign.json()["message"].replace(trace_id, "ID") == \
            missing.json()["message"].replace("no-such-trace", "ID")
        assert error_of(stranger.cancel(trace_id)) == (404, "trace_not_found")


def test_graph_is_served_gzipped_when_asked(stack: dict[str, Any]) -> None:
    with client(stack) as gw:
        trace_id = gw.explain().json()["explanation_metadata"]["trace_id"]
        assert gw.poll_until(trace_id, is_terminal, 10).reached
        url = f"{stack['url']}/v1/traces/{trace_id}/graph"
        with httpx.stream("GET", url, headers={**gw.headers, "accept-encoding": "gzip"}) as raw:
            assert raw.headers["content-encoding"] == "gzip"
            body = b"".join(raw.iter_raw())
        assert json.loads(gzip.decompress(body)) == gw.graph(trace_id).json()


def test_an_unreachable_upstream_is_502_opens_no_trace_and_is_not_ready(tmp_path: Path) -> None:
    handle = EmbeddedStack(str(tmp_path), env={"LLM_PROXY_URL": "http://127.0.0.1:9"})
    target = json.loads(Path(handle.ensure_started(require_ready=False)).read_text())
    try:
        with client(target) as gw:
            assert error_of(gw.explain()) == (502, "upstream_error")
            ready = gw.http.get("/readyz")
            assert error_of(ready) == (503, "not_ready")
            assert ready.json()["details"]["failing"] == ["upstream"]
            assert gw.http.get("/healthz").status_code == 200, "liveness is not readiness"
        time.sleep(0.1)
        status_file = Path(target["files"]["status_json"])
        assert not status_file.exists() or json.loads(status_file.read_text()) == {}
    finally:
        handle.stop()


def test_an_integral_float_max_tokens_is_honoured_not_a_crash(stack: dict[str, Any]) -> None:
    # Found by the contract fuzzer: JSON Schema counts 1000.0 as an integer.
    with client(stack) as gw:
        response = gw.http.post("/v1/chat/completions", json={**CHAT, "max_tokens": 12.0})
    assert response.status_code == 200, response.text[:200]
    assert response.json()["usage"]["completion_tokens"] == 12
