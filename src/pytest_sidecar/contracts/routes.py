"""The routes of the contract (§2, §2.10) and the capability each needs: one table that
the scope matrix, the fuzzer and the route-table specs share. Routes are compared by
template shape, so `{id}` and `{completion_id}` name the same route."""

from __future__ import annotations

import re

# (METHOD, path template as the contract's OpenAPI document writes it) -> capabilities.
ROUTE_NEEDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("POST", "/v1/chat/completions"): ("chat",),
    ("GET", "/v1/models"): ("models",),
    ("GET", "/v1/chat/completions/{completion_id}/explanation"): ("explain", "explanation_v2"),
    ("GET", "/v1/traces/{trace_id}/status"): ("explain",),
    ("GET", "/v1/traces/{trace_id}/graph"): ("explain",),
    ("GET", "/v1/traces/{trace_id}/stream"): ("explain", "trace_stream"),
    ("POST", "/v1/traces/{trace_id}/webhooks"): ("explain", "webhooks"),
    ("DELETE", "/v1/traces/{trace_id}"): ("explain", "cancel"),
    ("GET", "/healthz"): ("health",),
    ("GET", "/readyz"): ("health",),
    ("GET", "/metrics"): ("metrics:gateway",),
}

_PARAMETER = re.compile(r"\{[^}/]*\}|<[^>/]*>|:[A-Za-z_][A-Za-z0-9_]*")


def shape(path: str) -> str:
    """A path template with every parameter written `{}` (`{id}`, `<id>`, `:id` alike)."""
    return _PARAMETER.sub("{}", path.rstrip("/") or "/")


def route_key(route: str | tuple[str, str]) -> tuple[str, str]:
    """('METHOD', shape) of 'METHOD /path' or (method, path)."""
    method, path = route.split(" ", 1) if isinstance(route, str) else route
    return method.upper(), shape(path.strip())


def required_routes(capabilities: frozenset[str]) -> dict[tuple[str, str], tuple[str, str]]:
    """The contract's routes a target with these capabilities must serve, by shape key ->
    (method, template)."""
    return {route_key(key): key for key, needs in ROUTE_NEEDS.items()
            if all(name in capabilities for name in needs)}
