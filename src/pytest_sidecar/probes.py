"""Probes: cheap checks that a declared capability is really there.

A probe never decides a skip: it only turns a declaration into a failure when the target
does not live up to it (DECLARED_BUT_MISSING). Each returns None when fine, else a
one-line reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import httpx

from .target import Target
from .tls import tls_context

Probe = Callable[[Target, float], "str | None"]


def reachability(target: Target, timeout: float) -> str | None:
    """Does anything answer HTTP at the target's URL?"""
    try:
        httpx.get(target.url + "/healthz", timeout=timeout, verify=tls_context())
    except httpx.HTTPError as exc:
        return f"{target.url} did not answer: {type(exc).__name__}: {exc}".splitlines()[0]
    return None


def _auth(target: Target, timeout: float) -> str | None:
    status = httpx.get(target.url + "/v1/traces/probe/status", timeout=timeout,
                       verify=tls_context()).status_code
    if status != 401:
        return f"declares 'auth' but a request without a token got {status}, not 401"
    return None


def _tenants(target: Target, timeout: float) -> str | None:
    for key, tenant in sorted(target.tenants.items()):
        for role, token in (("write", tenant.tokens.write), ("read", tenant.tokens.read)):
            status = httpx.get(target.url + "/v1/traces/probe/status", timeout=timeout,
                               verify=tls_context(),
                               headers={"authorization": f"Bearer {token}"}).status_code
            if status in (401, 403):
                return f"tenant {key} {role} token is refused ({status})"
    return None


def _url(attribute: str) -> Probe:
    def probe(target: Target, timeout: float) -> str | None:
        url = getattr(target, attribute)
        try:
            status = httpx.get(url, timeout=timeout, verify=tls_context()).status_code
        except httpx.HTTPError as exc:
            return f"{url} did not answer: {type(exc).__name__}"
        return None if status == 200 else f"{url} answered {status}"
    return probe


def _file(attribute: str, want_dir: bool = False) -> Probe:
    """The declared path is on this runner. A file may not exist before the target's
    first write (a fresh store, an empty log), so its directory is enough."""
    def probe(target: Target, timeout: float) -> str | None:
        path = str(getattr(target, attribute)).removeprefix("file://")
        ok = os.path.isdir(path) if want_dir else (
            os.path.isfile(path) or os.path.isdir(os.path.dirname(path) or "."))
        return None if ok else f"{attribute} {path} does not exist on this runner"
    return probe


PROBES: dict[str, Probe] = {
    "auth": _auth,
    "tenants:2": _tenants,
    "metrics:gateway": _url("metrics_gateway"),
    "metrics:explainer": _url("metrics_explainer"),
    "status_store": _file("status_json"),
    "audit_log": _file("audit_log"),
    "artifacts": _file("artifacts", want_dir=True),
}
