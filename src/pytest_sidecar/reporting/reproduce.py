"""The reproduce command of a failed spec: its last request as a curl command line.

Tokens never appear: a known one becomes a reference to the environment variable that
supplies it (`$SIDECAR_TOKEN_WRITE`), any other secret the redactor knows becomes
[REDACTED], so the command is safe to paste into a ticket and runs once the variable
is set.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from ..options import OPTIONS
from ..vocabulary.keys import REPRODUCE_PROPERTY
from ..vocabulary.redaction import Redactor

if TYPE_CHECKING:
    from ..state import SidecarState
    from ..target import Target

_ENV = {option.name: option.env for option in OPTIONS}

# Headers httpx adds by itself; curl sends its own equivalents.
_IMPLIED = frozenset({"host", "user-agent", "accept-encoding", "connection", "content-length",
                      "accept"})


def curl_command(method: str, url: str, headers: Iterable[tuple[str, str]], body: bytes,
                 token_env: Mapping[str, str], redactor: Redactor) -> str:
    """`curl -sS -X POST URL -H ... --data-raw BODY`, with every token out of it."""
    parts = ["curl", "-sS", "-X", method, shlex.quote(url)]
    for name, value in headers:
        if name.lower() in _IMPLIED:
            continue
        scheme, _, credential = value.partition(" ")
        if name.lower() == "authorization" and credential in token_env:
            # Double quotes: the shell expands the variable.
            parts += ["-H", f'"{name}: {scheme} ${token_env[credential]}"']
            continue
        parts += ["-H", shlex.quote(redactor.text(f"{name}: {value}"))]
    if body:
        parts += ["--data-raw", shlex.quote(redactor.text(body.decode("utf-8", "replace")))]
    return redactor.text(" ".join(parts))


def _client_module() -> Any:
    """pytest_sidecar.client if a spec has used it: never imported (with httpx) here."""
    return sys.modules.get("pytest_sidecar.client")


def forget_sent_requests() -> None:
    """Before a test: the last request is the test's own or none."""
    client = _client_module()
    if client is not None:
        client.LAST_SENT.clear()


def attach_reproduce(report: pytest.TestReport, state: SidecarState) -> None:
    """On a failed report: the test's last request as curl, as a user property (it then
    rides to the controller, the event log, JUnit and pytest-html like evidence)."""
    client = _client_module()
    if client is None or not client.LAST_SENT:
        return
    if any(name == REPRODUCE_PROPERTY for name, _ in report.user_properties):
        return
    sent = client.LAST_SENT[-1]
    command = curl_command(sent.method, sent.url, sent.headers, sent.body,
                           token_variables(state.resolved_target), state.redactor)
    report.user_properties.append((REPRODUCE_PROPERTY, command))


def token_variables(target: Target | None) -> dict[str, str]:
    """Each option-supplied tenant token → the environment variable that supplies it."""
    if target is None:
        return {}
    found: dict[str, str] = {}
    for tenant, (write, read) in _TOKEN_OPTIONS.items():
        known = target.tenants.get(tenant)
        if known is not None:
            found.update({token: env for token, env in ((known.tokens.write, write),
                                                        (known.tokens.read, read)) if token})
    return found


_TOKEN_OPTIONS = {tenant: tuple(_ENV[f"token{suffix}_{role}"] for role in ("write", "read"))
                  for tenant, suffix in (("a", ""), ("b", "_b"))}
