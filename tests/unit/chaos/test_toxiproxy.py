"""The built-in fault proxy, driven the way Toxiproxy's clients drive Toxiproxy (plain
HTTP on its API), in front of a real reference stack: its API answers as Toxiproxy's
does, and each toxic really acts on the traffic."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pytest_sidecar import Target
from pytest_sidecar.chaos.toxiproxy import ProxyThread, ToxiproxyBackend
from pytest_sidecar.fixtures.stack import StackFactory

pytestmark = pytest.mark.disruptive
CHAT = {"model": "sidecar-fake-1", "messages": [{"role": "user", "content": "hello"}]}


# (the proxy's API, a client of the gateway through the proxy, the target)
Proxied = tuple[httpx.Client, httpx.Client, Target]


@pytest.fixture(scope="module")
def proxied(stack_factory: StackFactory) -> Iterator[Proxied]:
    """(the proxy's API, a client of the gateway through the proxy, the target)."""
    target = stack_factory()
    thread = ProxyThread()
    api = httpx.Client(base_url=thread.start(), timeout=10)
    upstream = target.url.removeprefix("http://")
    created = api.post("/proxies", json={"name": "gateway", "listen": "127.0.0.1:0",
                                         "upstream": upstream})
    assert created.status_code == 201, created.text
    listen = created.json()["listen"]
    assert not listen.endswith(":0"), "the resolved port comes back, as Toxiproxy does"
    token = target.tenants["a"].tokens.write
    client = httpx.Client(base_url=f"http://{listen}", timeout=10,
                          headers={"authorization": f"Bearer {token}"})
    try:
        yield api, client, target
    finally:
        client.close()
        api.close()
        thread.stop()
        stack_factory.stop(target)


def toxic(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/proxies/gateway/toxics", json=body)
    assert response.status_code == 200, response.text  # Toxiproxy: 200, not 201
    created: dict[str, Any] = response.json()
    return created


def test_the_api_answers_as_toxiproxy_does(proxied: Proxied) -> None:
    api, _, _ = proxied
    assert api.get("/version").json()["version"]
    again = api.post("/proxies", json={"name": "gateway", "upstream": "127.0.0.1:1"})
    assert (again.status_code, again.json()) == (409, {"error": "proxy already exists",
                                                       "status": 409})
    assert api.get("/proxies/nope").json() == {"error": "proxy not found", "status": 404}
    bad = api.post("/proxies/gateway/toxics", json={"type": "lag"})
    assert bad.status_code == 400 and bad.json()["error"].startswith("invalid toxic type")
    made = toxic(api, {"type": "latency", "attributes": {"latency": 10}})
    assert made == {"attributes": {"latency": 10, "jitter": 0}, "name": "latency_downstream",
                    "type": "latency", "stream": "downstream", "toxicity": 1.0}
    assert api.post("/reset").status_code == 204
    assert api.get("/proxies/gateway/toxics").json() == []


def test_latency_delays_and_its_removal_restores(proxied: Proxied) -> None:
    api, client, _ = proxied
    toxic(api, {"type": "latency", "name": "slow", "attributes": {"latency": 300}})
    started = time.monotonic()
    assert client.post("/v1/chat/completions", json=CHAT).status_code == 200
    slow = time.monotonic() - started
    assert api.delete("/proxies/gateway/toxics/slow").status_code == 204
    started = time.monotonic()
    assert client.post("/v1/chat/completions", json=CHAT).status_code == 200
    assert slow >= 0.3 > time.monotonic() - started


def test_http_status_answers_the_first_connections_itself(proxied: Proxied) -> None:
    api, _, _ = proxied
    toxic(api, {"type": "http_status", "name": "503s", "stream": "upstream",
                "attributes": {"status": 503, "first": 2}})
    listen = api.get("/proxies/gateway").json()["listen"]
    statuses = []
    for _ in range(3):  # a fresh connection each: the toxic counts connections
        with httpx.Client(base_url=f"http://{listen}", timeout=10) as fresh:
            statuses.append(fresh.get("/healthz").status_code)
    api.post("/reset")
    assert statuses == [503, 503, 200]


def test_a_cut_stream_ends_the_clients_stream_and_never_hangs(proxied: Proxied) -> None:
    api, client, _ = proxied
    toxic(api, {"type": "sse_cut", "name": "cut", "attributes": {"events": 2}})
    started = time.monotonic()
    events = 0
    with pytest.raises(httpx.HTTPError), client.stream("POST", "/v1/chat/completions",
                       json={**CHAT, "stream": True}) as response:
        for line in response.iter_lines():
            events += line.startswith("data:")
    api.post("/reset")
    assert events == 2 and time.monotonic() - started < 5  # two events, then the cut


def test_reset_peer_and_the_backend_protocol(proxied: Proxied) -> None:
    api, client, _ = proxied
    backend = ToxiproxyBackend(str(api.base_url))
    fault = backend.inject("reset_peer", {"proxy": "gateway", "attributes": {"timeout": 0}})
    assert [t["toxic"] for t in backend.leftovers()] == ["reset_peer_downstream"]
    fresh = httpx.Client(base_url=str(client.base_url), timeout=5)
    with pytest.raises(httpx.TransportError):
        fresh.post("/v1/chat/completions", json=CHAT)
    backend.rollback(fault)
    assert backend.leftovers() == []
    assert httpx.post(f"{client.base_url}/v1/chat/completions", json=CHAT, timeout=5,
                      headers=dict(client.headers)).status_code == 200  # healed
