"""An upstream stream cut mid-way (CONTRACT §2.1, §10): the client's stream ends, with an
error and never as a success ([DONE]), and never hangs; an explained chat's trace does not
end complete; the gateway's connections to the upstream return to their baseline.

The cut is made by a fault proxy in front of the gateway's upstream (a `sse_cut` toxic
of `sidecar-chaos proxy`). In embedded mode the spec builds that: a fake upstream, the
proxy, and a dedicated stack whose LLM_PROXY_URL is the proxy. A real deployment
declares its proxy as resilience.toxiproxy in the target file.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from pytest_sidecar import Evidence, Target
from pytest_sidecar.chaos.checks import until
from pytest_sidecar.chaos.toxiproxy import AppThread, FaultProxy, ProxyThread, ToxiproxyBackend
from pytest_sidecar.fixtures.stack import StackFactory
from pytest_sidecar.outcomes import SkipReason, skip
from pytest_sidecar.stack.upstream import create_fake_upstream
from pytest_sidecar.tls import tls_context
from pytest_sidecar.vocabulary.states import TERMINAL

# own_stack: on the embedded stack the cut is made on a stack (and proxy) of the spec's own
pytestmark = [pytest.mark.chaos, pytest.mark.disruptive, pytest.mark.own_stack,
              pytest.mark.profile("resilience"), pytest.mark.needs("chat_stream")]

DEADLINE_S = 10.0
MESSAGES = [{"role": "user", "content": "Explain how the gateway routes a request."}]


# (target, a backend on the proxy before its upstream, the proxy's name, the built-in
# proxy when the spec built it, else None)
UpstreamProxy = tuple[Target, ToxiproxyBackend, str, "FaultProxy | None"]


@pytest.fixture
def upstream_proxy(sidecar_target: Target, stack_factory: StackFactory
                   ) -> Iterator[UpstreamProxy]:
    """(target, a backend on the proxy before its upstream, the proxy's name, the
    built-in proxy when the spec built it, else None)."""
    if sidecar_target.origin != "embedded":
        declared = sidecar_target.resilience.get("toxiproxy")
        if not declared:
            skip(SkipReason.NOT_DECLARED, "the target file gives no resilience.toxiproxy (a "
                 "fault proxy in front of the gateway's upstream)", "run `sidecar-chaos "
                 "proxy` (or Toxiproxy) before the upstream and declare resilience.toxiproxy",
                 "§2.1")
        yield sidecar_target, ToxiproxyBackend(declared["url"]), declared["upstream_proxy"], None
        return
    fake = AppThread(create_fake_upstream(0.005, 0.020))
    proxy = ProxyThread()
    fake.start()
    api = proxy.start()
    made = httpx.post(api + "/proxies", json={"name": "upstream", "listen": "127.0.0.1:0",
                                              "upstream": fake.url.removeprefix("http://")})
    target = stack_factory(LLM_PROXY_URL="http://" + made.json()["listen"])
    try:
        yield target, ToxiproxyBackend(api), "upstream", proxy.fault_proxy
    finally:
        stack_factory.stop(target)
        proxy.stop()
        fake.stop()


def streamed(client: httpx.Client,
             model: str) -> tuple[list[str], str | None, BaseException | None]:
    """(data lines read, the trace id, the error that ended the stream, if any)."""
    lines: list[str] = []
    trace_id = None
    try:
        body = {"model": model, "stream": True, "messages": MESSAGES}
        with client.stream("POST", "/v1/chat/completions", json=body,
                           headers={"x-explain-mode": "hypergraph"}) as response:
            trace_id = response.headers.get("x-trace-id")
            for line in response.iter_lines():
                if line.startswith("data:"):
                    lines.append(line)
    except httpx.HTTPError as exc:
        return lines, trace_id, exc
    return lines, trace_id, None


@pytest.mark.clause("§2.1/upstream-errors")
def test_an_upstream_stream_cut_mid_way_ends_the_clients_stream_and_never_hangs(
        upstream_proxy: UpstreamProxy, evidence: Evidence) -> None:
    target, backend, name, built = upstream_proxy
    token = target.tenants["a"].tokens.write if target.tenants.get("a") else None
    client = httpx.Client(base_url=target.url, timeout=httpx.Timeout(DEADLINE_S),
                          verify=tls_context(),
                          headers={"authorization": f"Bearer {token}"} if token else {})
    whole, _, error = streamed(client, target.model)
    assert error is None and len(whole) > 4, (
        f"§2.1: with no fault a streamed chat must stream (more than the 4 events the cut "
        f"lets through); got {len(whole)} data lines, {error!r}")
    links = (lambda: len(built.proxies[name].links)) if built else None
    baseline = links() if links else None
    fault = backend.inject("sse_cut", {"proxy": name, "attributes": {"events": 3}})
    started = time.monotonic()
    try:
        cut, trace_id, error = streamed(client, target.model)
    finally:
        backend.rollback(fault)
    took = time.monotonic() - started
    assert not isinstance(error, httpx.TimeoutException) and took < DEADLINE_S, (
        f"§2.1: a stream cut upstream left the client's stream hanging ({took:.1f}s)")
    # `data:[DONE]` is the same end as `data: [DONE]` (SSE's space is optional).
    assert not any(line[5:].strip() == "[DONE]" for line in cut), (
        "§2.1: a stream cut upstream ended as if complete ([DONE]) after "
        f"{len(cut)} data lines")
    assert trace_id, "§2: the streamed chat's response carries no x-trace-id"
    state = None
    # A trace may have been opened (404: none was, as §2.1 wants of a failed chat); if one
    # was, it must end, and not as complete.
    opened = "explain" in target.capabilities and \
        client.get(f"/v1/traces/{trace_id}/status").status_code == 200
    if opened:
        def settled() -> str | None:
            answer = client.get(f"/v1/traces/{trace_id}/status")
            found = answer.json().get("state") if answer.status_code == 200 else None
            return found if found in TERMINAL else None

        state, _ = until(settled, DEADLINE_S, every_s=0.1)
        assert state is not None, (
            f"§2.1: the trace {trace_id} of a chat whose upstream stream was cut never ended "
            f"within {DEADLINE_S:g}s")
        assert state != "complete", (
            "§2.1: the trace of a chat whose upstream stream was cut ended complete")
    back = None
    if links is not None:
        assert baseline is not None  # measured whenever links can be counted
        back, _ = until(lambda: links() <= baseline, 5.0, every_s=0.1)
        assert back, (f"§10: the gateway kept {links()} connections to the upstream after "
                      f"the cut, against {baseline} before")
    client.close()
    evidence.record(full_stream_lines=len(whole), cut_after_lines=len(cut),
                    ended_by=type(error).__name__ if error else "end of stream",
                    seconds=round(took, 2), trace_state=state,
                    upstream_connections={"before": baseline,
                                          "after": links() if links else None})
