"""Probes: cheap checks that a declared capability is really there.

A probe never decides a skip: it only turns a declaration into a failure when the target
does not live up to it (DECLARED_BUT_MISSING). Each returns None when fine, else a
one-line reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable

import httpx

from .target import Target
from .tls import tls_context
from .vocabulary.defaults import THROTTLE_TENANT

Probe = Callable[[Target, float], "str | None"]


def reachability(target: Target, timeout: float) -> str | None:
    """Does anything answer HTTP at the target's URL?"""
    try:
        httpx.get(target.url + "/healthz", timeout=timeout, verify=tls_context())
    except httpx.HTTPError as exc:
        return f"{target.url} did not answer: {type(exc).__name__}: {exc}".splitlines()[0]
    return None


def _chat(target: Target, timeout: float, token: str | None) -> httpx.Response:
    """A one-token chat without explain: the route every target serves (§2.1); it opens
    no trace, so probing leaves nothing behind."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.post(target.url + "/v1/chat/completions", timeout=timeout,
                      verify=tls_context(), headers=headers,
                      json={"model": target.model, "max_tokens": 1,
                            "messages": [{"role": "user", "content": "probe"}]})


def _auth(target: Target, timeout: float) -> str | None:
    """'auth' means the gateway refuses a request without a token (§3): asked on the chat
    route, which a chat-only target serves too."""
    status = _chat(target, timeout, None).status_code
    if status != 401:
        return (f"declares 'auth' but a chat without a token got {status}, not 401 "
                "(POST /v1/chat/completions)")
    return None


def _tenants(target: Target, timeout: float) -> str | None:
    """Each tenant token the target file gives is accepted: write tokens on the chat
    route; read tokens on a trace route, which only a target that explains serves (an
    accepted token gets 404 trace_not_found for an id nobody made). A token the file
    does not give is not probed: the specs that need it skip, typed. The throttle
    tenant is not probed either: its buckets are the rate-limit specs' to count."""
    for key, tenant in sorted(target.tenants.items()):
        if key == THROTTLE_TENANT:
            continue
        tokens = (("write", tenant.tokens.write, "chat"), ("read", tenant.tokens.read, "trace"))
        for role, token, route in tokens:
            if not token or (route == "trace" and "explain" not in target.capabilities):
                continue
            if route == "chat":
                response = _chat(target, timeout, token)
            else:
                response = httpx.get(target.url + f"/v1/traces/probe-{uuid.uuid4().hex}/status",
                                     timeout=timeout, verify=tls_context(),
                                     headers={"authorization": f"Bearer {token}"})
            if response.status_code in (401, 403):
                return f"tenant {key} {role} token is refused ({response.status_code})"
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
