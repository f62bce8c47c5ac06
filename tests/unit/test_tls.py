"""Every client the suite makes shares one TLS context (tls.py): a context per client
cost ~60 ms each, even for http:// URLs (benchmarks/client_setup.py)."""

from __future__ import annotations

import asyncio
import ssl

from pytest_sidecar.client import AsyncSidecarClient, SidecarClient
from pytest_sidecar.tls import tls_context


def _context_of(transport: object) -> ssl.SSLContext:
    # httpx's transports keep their TLS context on the httpcore pool they wrap.
    while not hasattr(transport, "_pool"):
        transport = transport.inner  # type: ignore[attr-defined]  # the Retry-After wrapper
    return transport._pool._ssl_context


def test_clients_share_one_verifying_context() -> None:
    context = tls_context()
    assert context is tls_context(), "made once per process"
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    with SidecarClient("http://127.0.0.1:9", "t") as one, \
            SidecarClient("http://127.0.0.1:9", retry_rate_limited=False) as two:
        for client in (one, two):
            assert _context_of(client.http._transport) is context


def test_async_clients_share_it_too() -> None:
    client = AsyncSidecarClient("http://127.0.0.1:9")
    assert _context_of(client.http._transport) is tls_context()
    asyncio.run(client.aclose())
