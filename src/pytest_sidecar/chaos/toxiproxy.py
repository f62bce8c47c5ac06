"""A fault proxy that speaks Toxiproxy's HTTP API, and a backend that drives any server
speaking it (ours, or a real Toxiproxy by URL).

The API follows Toxiproxy 2.x: `GET/POST /proxies`, `POST /populate`,
`GET/POST/PATCH/DELETE /proxies/{proxy}`, `GET/POST /proxies/{proxy}/toxics`,
`GET/POST/PATCH/DELETE /proxies/{proxy}/toxics/{toxic}`, `POST /reset`, `GET /version`,
with its status codes (201 on create, 200 on toxic create, 204 on delete) and error body
`{"error": ..., "status": ...}`; so Toxiproxy's clients and chaostoolkit-toxiproxy drive
it (the routes are in toxiproxy_api.py). Toxic types are Toxiproxy's plus the HTTP/SSE-aware
ones of toxics.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette

from ..tls import tls_context
from .backends import Fault
from .toxics import (
    Closed,
    InvalidToxic,
    Link,
    Toxic,
    http_answer,
    latency_s,
    slices,
    transform,
    validate,
)
from .toxiproxy_api import ToxiproxyApiError, address
from .toxiproxy_api import app as api_app

# Chunks read ahead while earlier ones wait out their latency (Toxiproxy's links buffer
# the same way); past it, reading waits.
_READ_AHEAD = 256


class Proxy:
    """One listening proxy: every accepted connection is linked to the upstream."""

    def __init__(self, name: str, listen: str, upstream: str, enabled: bool = True) -> None:
        self.name, self.listen, self.upstream, self.enabled = name, listen, upstream, enabled
        self.toxics: dict[str, Toxic] = {}
        self.links: set[Link] = set()
        self.connections = 0
        self._server: asyncio.Server | None = None

    def as_json(self) -> dict[str, Any]:
        ordered = sorted(self.toxics.values(), key=lambda t: t.stream != "upstream")
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream,
                "enabled": self.enabled, "toxics": [t.as_json() for t in ordered]}

    async def start(self) -> None:
        host, _, port = self.listen.rpartition(":")
        try:
            self._server = await asyncio.start_server(self._accept, host or "127.0.0.1",
                                                      int(port or 0))
        except OSError as exc:
            raise ToxiproxyApiError(500, f"listen tcp {self.listen}: {exc.strerror}") from None
        bound = self._server.sockets[0].getsockname()
        self.listen = f"{bound[0]}:{bound[1]}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for link in list(self.links):
            link.client.close()
            link.server.close()
        self.links.clear()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
                      ) -> None:
        self.connections += 1
        injected = self._injected_status()
        if injected is not None:
            with contextlib.suppress(Exception):
                await client_r.readuntil(b"\r\n\r\n")  # the request head, then the answer
                client_w.write(http_answer(injected))
                await client_w.drain()
            client_w.close()
            return
        host, _, port = self.upstream.rpartition(":")
        try:
            server_r, server_w = await asyncio.open_connection(host, int(port))
        except OSError:
            client_w.close()
            return
        link = Link(client_w, server_w)
        self.links.add(link)
        try:
            await asyncio.gather(self._pump(client_r, server_w, "upstream", link),
                                 self._pump(server_r, client_w, "downstream", link))
        finally:
            self.links.discard(link)
            for writer in (client_w, server_w):
                writer.close()

    def _injected_status(self) -> int | None:
        for toxic in self.toxics.values():
            if toxic.type != "http_status" or random.random() >= toxic.toxicity:
                continue
            a = toxic.attributes
            toxic.connections += 1
            if (a["first"] and toxic.connections <= a["first"]) or (
                    a["percent"] and random.random() * 100 < a["percent"]) or (
                    not a["first"] and not a["percent"]):
                return int(a["status"])
        return None

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    direction: str, link: Link) -> None:
        """Relay one direction. Reading runs ahead of writing, each chunk stamped when it
        arrived, so latency is counted from each chunk's arrival as Toxiproxy does."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(_READ_AHEAD)

        async def read() -> None:
            try:
                while chunk := await reader.read(65536):
                    await queue.put((loop.time(), chunk))
            except (ConnectionError, OSError):
                pass
            finally:
                await queue.put(None)

        reading = asyncio.create_task(read())
        try:
            while (item := await queue.get()) is not None:
                arrived, chunk = item
                toxics = list(self.toxics.values())
                due = arrived + latency_s(direction, link, toxics)
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                out = await transform(chunk, direction, link, toxics,
                                      lambda name: name in self.toxics)
                await self._write(out, writer, direction, link)
            await self._slow_close(direction, link)
        except (Closed, ConnectionError, OSError):
            pass
        finally:
            reading.cancel()
            link.client.close()
            link.server.close()

    async def _write(self, out: bytes, writer: asyncio.StreamWriter, direction: str,
                     link: Link) -> None:
        slicer = next((t for t in self.toxics.values() if t.type == "slicer"
                       and t.stream == direction and link.hit(t)), None)
        pieces = slices(out, int(slicer.attributes["average_size"]),
                        int(slicer.attributes["size_variation"])) if slicer else [out]
        for piece in pieces:
            if piece:
                writer.write(piece)
                await writer.drain()
                if slicer:
                    await asyncio.sleep(float(slicer.attributes["delay"]) / 1e6)

    async def _slow_close(self, direction: str, link: Link) -> None:
        for toxic in list(self.toxics.values()):
            if toxic.type == "slow_close" and toxic.stream == direction and link.hit(toxic):
                await asyncio.sleep(float(toxic.attributes["delay"]) / 1000)


class FaultProxy:
    """The proxies and the Toxiproxy API over them."""

    def __init__(self) -> None:
        self.proxies: dict[str, Proxy] = {}

    async def create(self, body: Any) -> Proxy:
        if not isinstance(body, dict):
            raise ToxiproxyApiError(400, "bad request body: a proxy is a JSON object")
        for key in ("name", "upstream"):
            if not body.get(key):
                raise ToxiproxyApiError(400, f"missing required field: {key}")
        if not isinstance(body["name"], str):
            raise ToxiproxyApiError(400, "name must be a string")
        enabled = body.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ToxiproxyApiError(400, "enabled must be true or false")
        listen = address(body.get("listen") or "127.0.0.1:0", "listen")
        upstream = address(body["upstream"], "upstream")
        if body["name"] in self.proxies:
            raise ToxiproxyApiError(409, "proxy already exists")
        proxy = Proxy(body["name"], listen, upstream, enabled)
        if proxy.enabled:
            await proxy.start()
        self.proxies[proxy.name] = proxy
        return proxy

    def get(self, name: str) -> Proxy:
        if name not in self.proxies:
            raise ToxiproxyApiError(404, "proxy not found")
        return self.proxies[name]

    async def update(self, name: str, body: Any) -> Proxy:
        proxy = self.get(name)
        if not isinstance(body, dict):
            raise ToxiproxyApiError(400, "bad request body: a proxy is a JSON object")
        if "listen" in body:
            address(body["listen"], "listen")
        if "upstream" in body:
            address(body["upstream"], "upstream")
        enabled = body.get("enabled", proxy.enabled)
        if not isinstance(enabled, bool):
            raise ToxiproxyApiError(400, "enabled must be true or false")
        moved = (body.get("listen", proxy.listen) != proxy.listen
                 or body.get("upstream", proxy.upstream) != proxy.upstream)
        if moved or not enabled:
            await proxy.stop()
        proxy.listen = str(body.get("listen", proxy.listen))
        proxy.upstream = str(body.get("upstream", proxy.upstream))
        if enabled and (moved or not proxy.enabled):
            await proxy.start()
        proxy.enabled = enabled
        return proxy

    def add_toxic(self, name: str, body: Any) -> Toxic:
        proxy = self.get(name)
        if not isinstance(body, dict):
            raise ToxiproxyApiError(400, "bad request body: a toxic is a JSON object")
        stream = str(body.get("stream", "downstream")).lower()
        if stream not in ("upstream", "downstream"):
            raise ToxiproxyApiError(400, "stream was invalid, can be either upstream or downstream")
        kind = str(body.get("type", ""))
        toxic_name = body.get("name") or f"{kind}_{stream}"
        toxicity = body.get("toxicity", 1.0)
        attributes = body.get("attributes") or {}
        try:
            validate(kind, attributes, toxicity)
        except InvalidToxic as exc:
            raise ToxiproxyApiError(400, str(exc)) from None
        if toxic_name in proxy.toxics:
            raise ToxiproxyApiError(409, "toxic already exists")
        toxic = Toxic(toxic_name, kind, stream, float(toxicity), dict(attributes))
        proxy.toxics[toxic_name] = toxic
        return toxic

    def toxic(self, name: str, toxic_name: str) -> Toxic:
        toxics = self.get(name).toxics
        if toxic_name not in toxics:
            raise ToxiproxyApiError(404, "toxic not found")
        return toxics[toxic_name]

    async def populate(self, items: Any) -> list[Proxy]:
        """Toxiproxy's populate: create each proxy, keeping one only when its upstream
        and, if given, its listen address are unchanged."""
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ToxiproxyApiError(400, "bad request body: populate takes a JSON array of proxies")
        made = []
        for item in items:
            current = self.proxies.get(item.get("name"))
            if current and current.upstream == item.get("upstream") and (
                    not item.get("listen") or address(item["listen"], "listen")
                    in (current.listen, _unbound(current.listen))):
                made.append(current)
                continue
            if current:
                await current.stop()
                del self.proxies[current.name]
            made.append(await self.create(item))
        return made

    def update_toxic(self, name: str, toxic_name: str, body: Any) -> Toxic:
        """Change a toxic's attributes or toxicity, checked whole before anything
        changes."""
        found = self.toxic(name, toxic_name)
        if not isinstance(body, dict):
            raise ToxiproxyApiError(400, "bad request body: a toxic is a JSON object")
        attributes = {**found.attributes, **(body.get("attributes") or {})}
        toxicity = body.get("toxicity", found.toxicity)
        try:
            validate(found.type, attributes, toxicity)
        except InvalidToxic as exc:
            raise ToxiproxyApiError(400, str(exc)) from None
        found.attributes, found.toxicity = attributes, float(toxicity)
        return found

    async def reset(self) -> None:
        for proxy in self.proxies.values():
            proxy.toxics.clear()
            if not proxy.enabled:
                await self.update(proxy.name, {"enabled": True})

    def app(self) -> Starlette:
        """The Toxiproxy HTTP API over these proxies."""
        return api_app(self)


def _unbound(listen: str) -> str:
    """'127.0.0.1:0' for a bound '127.0.0.1:41234': what was asked for when any port."""
    return listen.rpartition(":")[0] + ":0"


class ToxiproxyBackend:
    """A fault backend over any Toxiproxy API (ours or Shopify's): a fault is a toxic on
    a proxy. Toxiproxy has no leases: a killed runner's toxics stay until removed, so
    `leftovers` lists every toxic, and the chaos fixture refuses to start over them."""

    name = "toxiproxy"

    def __init__(self, url: str) -> None:
        import httpx

        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=10, verify=tls_context())

    def inject(self, kind: str, settings: Mapping[str, Any], lease_s: float = 0) -> Fault:
        body = {"type": kind, **{k: v for k, v in settings.items() if k != "proxy"}}
        response = self._http.post(f"/proxies/{settings['proxy']}/toxics", json=body)
        if response.status_code != 200:
            raise ToxiproxyApiError(response.status_code,
                                    response.json().get("error", response.text))
        return Fault(self.name, kind, {**settings, "name": response.json()["name"]}, lease_s)

    def renew(self, fault: Fault) -> None:
        """Nothing to renew: Toxiproxy toxics do not expire."""

    def rollback(self, fault: Fault) -> None:
        self._http.delete(f"/proxies/{fault.settings['proxy']}/toxics/"
                          f"{fault.settings['name']}")

    def leftovers(self) -> list[dict[str, Any]]:
        proxies = self._http.get("/proxies").json()
        return [{"backend": self.name, "proxy": name, "toxic": toxic["name"],
                 "type": toxic["type"]}
                for name, proxy in proxies.items() for toxic in proxy.get("toxics", [])]


class AppThread:
    """An ASGI app served by uvicorn on a loop in a thread of its own (`start`), or in
    the foreground (`serve`): the fault proxy's API, or a test's fake upstream."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        import socket

        import uvicorn

        # IPPROTO_TCP said explicitly: asyncio turns Nagle off only on such sockets, and
        # without it each small answer waits ~40 ms for the client's delayed ACK.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self._socket.listen(1024)
        bound = self._socket.getsockname()
        self.url = f"http://{bound[0]}:{bound[1]}"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning",
                                                     lifespan="off"))
        self._thread: Any = None

    def serve(self) -> None:
        """Run in this thread until interrupted."""
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def start(self) -> str:
        import threading
        import time

        self._thread = threading.Thread(target=self.serve, name="app-thread", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.url

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


class ProxyThread(AppThread):
    """The fault proxy: its API and its proxies on one loop."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.fault_proxy = FaultProxy()
        super().__init__(self.fault_proxy.app(), host, port)
