"""One TLS context for every HTTP client this process makes.

httpx builds a fresh `ssl.SSLContext` (loading certifi's CA bundle) for every `Client`,
every transport and every module-level call such as `httpx.get`: ~60 ms each on a CI
core, paid even for `http://` URLs. The suite makes thousands of short-lived clients (a
status read per trace, a scrape per probe, a readiness poll), so they share one context,
made once by httpx's own rules (`SSL_CERT_FILE` and `SSL_CERT_DIR` are honoured). An
`SSLContext` is safe to share between threads and clients.
"""

from __future__ import annotations

import functools
import ssl


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The process's verifying TLS context (made on first use)."""
    import httpx  # here, not at the top: importing the package must not load httpx

    return httpx.create_ssl_context()
