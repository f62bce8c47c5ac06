"""Runs the reference stack: the gateway (with the fake upstream) and the explainer, each a
process of its own, on loopback ports.

Every server binds port 0 unless told otherwise and reports its bound URL in the target
file, which is written (atomically, mode 0600: it holds tokens) only once all parts are
ready. SIGTERM/SIGINT stop it cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import replace
from importlib import resources
from typing import TYPE_CHECKING, Any

import uvicorn

from ..atomic import write_atomic
from .settings import StackSettings, TokenInfo
from .supervisor import RoleChild
from .variants import parse as parse_variants
from .variants import policies_of, seamed

if TYPE_CHECKING:
    from .services import GatewayServices

log = logging.getLogger("sidecar.stack")

# Every capability the reference stack implements (the target file declares them).
IMPLEMENTED = ("chat", "chat_stream", "health", "explain", "trace_stream", "cancel",
               "client_trace_id", "rate_limits", "idempotency", "explanation_v2", "webhooks",
               "readiness_switch", "backpressure", "chaos_flags", "circuit_breaker",
               # OpenAI's extended features (§2.12)
               "models", "n", "stop", "content_parts", "include_usage")
EXPLAINER_START_TIMEOUT_S = 60.0
TOKEN_PREFIX = "sct_"  # recognisable, so redactors can catch a stray one by pattern


class _QuietUvicorn(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the launcher (several share a loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def generate_tokens() -> dict[str, TokenInfo]:
    """Fresh tokens for two tenants: a write token (both scopes) and a read-only token each."""
    tokens = {}
    for tenant in ("tenant-a", "tenant-b", "tenant-c"):
        tokens[TOKEN_PREFIX + secrets.token_urlsafe(24)] = TokenInfo(
            tenant, frozenset({"traces:read", "traces:write"}), f"{tenant}-writer")
        tokens[TOKEN_PREFIX + secrets.token_urlsafe(24)] = TokenInfo(
            tenant, frozenset({"traces:read"}), f"{tenant}-reader")
    return tokens


def target_tenants(tokens: Mapping[str, TokenInfo]) -> dict[str, Any]:
    """The target file's tenants a/b/c from the token table (first three tenants by id)."""
    by_tenant: dict[str, dict[str, str]] = {}
    for token, info in tokens.items():
        slot = by_tenant.setdefault(info.tenant_id, {})
        if {"traces:read", "traces:write"} <= info.scopes:
            slot.setdefault("write", token)
        elif info.scopes == {"traces:read"}:
            slot.setdefault("read", token)
    return {key: {"id": tenant, "tokens": by_tenant[tenant]}
            for key, tenant in zip(("a", "b", "c"), sorted(by_tenant), strict=False)}


def _bind(host: str, port: int) -> socket.socket:
    # proto IPPROTO_TCP explicitly: asyncio turns Nagle off (TCP_NODELAY) only on sockets
    # that say so, and accepted sockets inherit it. Without it every response waited for
    # the client's delayed ACK: ~40 ms per request.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-sidecar")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


def target_document(settings: StackSettings, url: str, upstream: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "version": 1,
        "url": url,
        "metrics": {"gateway": url + "/metrics"},
        "files": {"status_json": settings.status_json_path,
                  "audit_log": settings.audit_log_path,
                  "chaos_control": settings.chaos_control_path,
                  "artifacts": "file://" + settings.artifact_root},
        "model": settings.served_models[0],
        "implementation": {"organization": "pytest-sidecar", "project": "reference stack",
                           "url": "https://pypi.org/project/pytest-sidecar/",
                           "version": _version(), "contact": ["the pytest-sidecar maintainers"]},
        "capabilities": [*IMPLEMENTED, *(["auth"] if settings.auth_mode == "static" else []),
                         # The fake upstream answers a request the same way every time;
                         # a real one behind LLM_PROXY_URL promises nothing of the kind.
                         *(["seed"] if settings.llm_proxy_url is None else []),
                         *(["cors"] if settings.cors_origins else []),
                         *(["webhook_receiver"] if "127.0.0.1" in settings.webhook_allow_hosts
                           else [])],
        "rate_limits": rate_limits_document(settings),
        "x-reference-stack": {"pid": os.getpid(), "state_dir": settings.state_dir,
                              "upstream": upstream, "defects": sorted(settings.defects),
                              "variants": list(settings.variants)},
    }
    if settings.tokens:
        doc["tenants"] = target_tenants(settings.tokens)
    if settings.cors_origins:
        doc["cors"] = {"allowed_origins": sorted(settings.cors_origins)}
    doc["resilience"] = {"upstream_timeout_s": settings.upstream_timeout_s,
                         "chaos_reload_s": 0.3,  # the chaos file is polled every 0.1 s
                         "circuit_breaker": {"failures": settings.breaker_failures,
                                             "cooldown_s": settings.breaker_cooldown_s}}
    # The TTL as it is; the suite decides whether it is short enough to observe a 410.
    doc["trace_ttl_seconds"] = settings.ttl_s
    return doc


def rate_limits_document(settings: StackSettings) -> dict[str, Any]:
    """The target file's rate_limits: the stack-wide limits and each tenant's overrides."""
    keys = {tenant["id"]: key for key, tenant in target_tenants(settings.tokens).items()}
    doc: dict[str, Any] = {category: {"rps": limit.rps, "burst": limit.burst}
                           for category, limit in settings.rate_limits.items()}
    overrides = {keys[tenant]: {category: {"rps": limit.rps, "burst": limit.burst}
                                for category, limit in limits.items()}
                 for tenant, limits in settings.tenant_rate_limits.items() if tenant in keys}
    if overrides:
        doc["tenants"] = overrides
    return doc


async def serve(settings: StackSettings, *, host: str, port: int, target_file: str,
                role: str = "all", exit_with_pid: int | None = None,
                log_file: str | None = None, child_env: Mapping[str, str] | None = None,
                upstream: RoleChild | None = None) -> None:
    """Run one role of the stack until SIGTERM/SIGINT (or until `exit_with_pid` is gone).

    "gateway" and "explainer" are the two processes; "all" runs the gateway here and the
    explainer as a child process (with `child_env`), started again if it dies. `upstream`
    is the fake upstream's process when the caller spawned it already."""
    if settings.defects:
        log.warning("sidecar-stack: running with defects %s", ", ".join(sorted(settings.defects)))
    os.makedirs(settings.state_dir, exist_ok=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.create_task(_watch_pid(exit_with_pid, stop)) if exit_with_pid else None
    env = dict(child_env or os.environ)
    child = None
    try:
        if role == "explainer":
            await _serve_explainer(settings, host, port, target_file, stop)
            return
        if role == "upstream":
            await _serve_upstream(settings, port, target_file, stop)
            return
        if role == "all":
            child = RoleChild("explainer", settings.state_dir, host, env)
            child.start()
        await _serve_gateway(settings, host, port, target_file, stop, log_file, env, upstream)
    finally:
        if watcher:
            watcher.cancel()
        if child is not None:
            await child.stop()


async def _serve_explainer(settings: StackSettings, host: str, port: int, target_file: str,
                           stop: asyncio.Event) -> None:
    """The explainer process: its workers, and /metrics and /healthz on its own port."""
    from .explainer_process import ExplainerServices, create_explainer_app

    services = ExplainerServices.build(settings)
    sock = _bind(host, port)
    services.explainer.metrics_url = _url(host, sock) + "/metrics"
    await services.start()
    servers = [(_QuietUvicorn(_config(create_explainer_app(services.explainer))), sock)]
    try:
        await _run_servers(servers, stop, lambda: write_atomic(target_file, json.dumps({
            "role": "explainer", "pid": os.getpid(), "url": _url(host, sock),
            "metrics": services.explainer.metrics_url}).encode()))
    finally:
        await services.stop()


async def _serve_upstream(settings: StackSettings, port: int, target_file: str,
                          stop: asyncio.Event) -> None:
    """The fake upstream LLM, a service of its own as a real one is."""
    from .upstream import create_fake_upstream

    sock = _bind("127.0.0.1", port)
    policies = policies_of(seamed(settings.variants, settings.defects))
    fake = create_fake_upstream(settings.fake_latency_s, settings.fake_token_s,
                                policies.tokens_per_chunk, policies.usage_chunk)
    await _run_servers([(_QuietUvicorn(_config(fake)), sock)], stop, lambda: write_atomic(
        target_file, json.dumps({"role": "upstream", "pid": os.getpid(),
                                 "url": _url("127.0.0.1", sock)}).encode()))


async def _serve_gateway(settings: StackSettings, host: str, port: int, target_file: str,
                         stop: asyncio.Event, log_file: str | None,
                         env: dict[str, str], fake: RoleChild | None = None) -> None:
    """The gateway process (starting the fake upstream's unless LLM_PROXY_URL names one)."""
    if settings.auth_mode == "static" and not settings.tokens:
        settings = replace(settings, tokens=generate_tokens())
    gateway_sock = _bind(host, port)
    upstream_url = settings.llm_proxy_url
    if upstream_url is None:
        if fake is None:
            fake = RoleChild("upstream", settings.state_dir, "127.0.0.1", env)
            fake.spawn()
        fake.supervise()
        try:
            upstream_url = await fake.url()
        except RuntimeError:
            await fake.stop()
            raise
    try:
        await _serve_gateway_with(settings, host, gateway_sock, upstream_url, target_file,
                                  stop, log_file)
    finally:
        if fake is not None:
            await fake.stop()


async def _serve_gateway_with(settings: StackSettings, host: str, gateway_sock: socket.socket,
                              upstream_url: str, target_file: str, stop: asyncio.Event,
                              log_file: str | None) -> None:
    from .gateway import create_gateway, routes_of, served_routes
    from .services import GatewayServices

    services = GatewayServices.build(settings, upstream_url)
    await services.start()
    servers = [(_QuietUvicorn(_config(create_gateway(services))), gateway_sock)]

    def announce() -> None:
        url = _url(host, gateway_sock)
        doc = target_document(settings, url, None if settings.llm_proxy_url else upstream_url)
        doc["metrics"]["explainer"] = services.explainer.heartbeat["metrics"]
        doc["x-reference-stack"]["pids"] = {"gateway": os.getpid(),
                                            "explainer": services.explainer.heartbeat["pid"]}
        variants = parse_variants(settings.variants)
        doc["routes"] = served_routes(routes_of(variants))
        # The API this stack serves is the one the package ships (it validates requests
        # against it).
        doc["openapi"] = str(resources.files("pytest_sidecar.contracts").joinpath(
            "hypergraph-api.yaml"))
        if log_file:
            doc["files"]["log"] = os.path.abspath(log_file)
        for variant in variants:  # what an allowed variation declares differently
            if variant.target:
                variant.target(doc)
        write_atomic(target_file, json.dumps(doc, indent=2).encode(), mode=0o600)  # tokens
        log.warning("sidecar-stack ready: gateway %s, state %s, target file %s",
                    url, settings.state_dir, target_file)

    try:
        await _await_explainer(services, stop)
        await _run_servers(servers, stop, announce)
    finally:
        await services.stop()


async def _await_explainer(services: GatewayServices, stop: asyncio.Event,
                           timeout: float = EXPLAINER_START_TIMEOUT_S) -> None:
    """The target file names the explainer's metrics: wait for a heartbeat of a live
    explainer (one a previous run left in the database is stale)."""
    deadline = time.monotonic() + timeout
    while not (services.explainer.alive() and services.explainer.heartbeat.get("metrics")) \
            and not stop.is_set():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no explainer process spoke within {timeout:g}s")
        await asyncio.sleep(0.02)


async def _run_servers(servers: list[tuple[_QuietUvicorn, socket.socket]], stop: asyncio.Event,
                       announce: Callable[[], None]) -> None:
    """Serve until `stop`; `announce()` once every server is up."""
    tasks = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in servers]
    try:
        while not all(server.started for server, _ in servers):
            if any(task.done() for task in tasks):
                raise RuntimeError("a server failed to start")
            if stop.is_set():
                return
            await asyncio.sleep(0.01)
        announce()
        # What exists now (modules, apps, settings) lives as long as the stack: keep it out
        # of the collector, whose full passes over it stalled the loop under load.
        gc.collect()
        gc.freeze()
        await stop.wait()
    finally:
        for server, _ in servers:
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        log.warning("sidecar-stack stopped")


def _config(app: Any) -> uvicorn.Config:
    return uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                          timeout_graceful_shutdown=2)


async def _watch_pid(pid: int, stop: asyncio.Event) -> None:
    """Stop when the process that owns this stack is gone (no stack outlives its run)."""
    while not stop.is_set():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            log.warning("owner process %d is gone; stopping", pid)
            stop.set()
            return
        except PermissionError:
            pass
        await asyncio.sleep(0.5)
