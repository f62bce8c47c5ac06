"""Capabilities: what a target offers, and what a test needs (`@pytest.mark.needs`).

The registry is a closed set: each capability names its conformance profile, the
contract section that defines it and the action that enables it on a target. Which
capabilities a target's file implies is the Target's business (target.py).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from .defaults import SHORT_TTL_LIMIT_S

PROFILES = ("core", "openai", "explain", "security", "observability", "performance", "platform",
            "resilience")


@dataclass(frozen=True)
class Capability:
    name: str
    profile: str
    section: str
    summary: str
    action: str
    # An optional feature of its profile (Gateway API's "extended" support level): a
    # target without it is unsupported for it, and the profile's core verdict stands.
    extended: bool = False


_ALL = (
    Capability("chat", "core", "§2.1", "POST /v1/chat/completions answers",
               "run the gateway with an upstream (LLM_PROXY_URL)"),
    Capability("chat_stream", "core", "§2.1", "chat with stream: true (SSE chunks, [DONE])",
               "implement stream: true (OpenAI chunks ending with [DONE]), "
               "then declare 'chat_stream' in the target file"),
    Capability("models", "openai", "§2.12", "GET /v1/models lists the served models",
               "serve OpenAI's model list at GET /v1/models, then declare 'models'", extended=True),
    Capability("n", "openai", "§2.12", "n > 1 answers n choices",
               "answer n choices for n > 1, then declare 'n' in the target file", extended=True),
    Capability("stop", "openai", "§2.12", "stop sequences end the answer before them",
               "honour the stop parameter, then declare 'stop' in the target file", extended=True),
    Capability("content_parts", "openai", "§2.12",
               "a message's content may be an array of text parts",
               "accept content as an array of {type: text, text} parts, then declare "
               "'content_parts'", extended=True),
    Capability("include_usage", "openai", "§2.12",
               "stream_options.include_usage ends a stream with a usage chunk",
               "send OpenAI's final usage chunk when stream_options.include_usage is "
               "true, then declare 'include_usage'", extended=True),
    Capability("seed", "openai", "§2.12",
               "the same request with the same seed answers the same text",
               "serve a deterministic model (temperature 0 and seed honoured), then "
               "declare 'seed' in the target file", extended=True),
    Capability("health", "core", "§2.10", "GET /healthz and /readyz",
               "serve /healthz and /readyz and declare 'health'"),
    Capability("explain", "explain", "§2.2-2.4", "x-explain-mode: hypergraph opens a trace",
               "run the explainer and declare 'explain'"),
    Capability("trace_stream", "explain", "§2.5", "GET /v1/traces/{id}/stream (live SSE)",
               "implement the live SSE stream of a trace, then "
               "declare 'trace_stream' in the target file"),
    Capability("cancel", "explain", "§2.7", "DELETE /v1/traces/{id}",
               "implement DELETE /v1/traces/{id}, then declare "
               "'cancel' in the target file"),
    Capability("client_trace_id", "explain", "§2.1", "client-chosen x-trace-id",
               "accept a client-chosen x-trace-id (409 when taken), then "
               "declare 'client_trace_id' in the target file"),
    Capability("short_ttl", "explain", "§2.2", "a trace TTL short enough to observe 410",
               f"set trace_ttl_seconds (<= {SHORT_TTL_LIMIT_S:g}) in the target file"),
    Capability("explanation_v2", "explain", "§2.9",
               "GET /v1/chat/completions/{id}/explanation",
               "implement the completion's explanation route (HIF v2), then "
               "declare 'explanation_v2' in the target file"),
    Capability("auth", "security", "§3", "static bearer tokens with scopes (AUTH_MODE=static)",
               "set AUTH_MODE=static, give tokens and declare 'auth'"),
    Capability("tenants:2", "security", "§3", "two tenants with write and read tokens",
               "give tenants.a and tenants.b with write and read tokens in the target file"),
    Capability("rate_limits", "security", "§3", "per-tenant token-bucket rate limits",
               "implement per-tenant token buckets with 429 and Retry-After, "
               "then declare 'rate_limits' in the target file"),
    Capability("idempotency", "security", "§2.8", "x-idempotency-key replay",
               "implement x-idempotency-key replay, then declare "
               "'idempotency' in the target file"),
    Capability("webhooks", "security", "§2.6", "POST /v1/traces/{id}/webhooks",
               "implement trace webhooks (signed, at-least-once), then "
               "declare 'webhooks' in the target file"),
    Capability("webhook_receiver", "security", "§2.6",
               "webhooks can be delivered to a receiver on the runner's 127.0.0.1",
               "co-locate the target and allow 127.0.0.1 (WEBHOOK_ALLOW_HOSTS), then declare "
               "'webhook_receiver'"),
    Capability("cors", "security", "§2.11", "CORS allow-list",
               "set CORS_ALLOW_ORIGINS and declare 'cors'"),
    Capability("audit_log", "security", "§7", "the audit log file is readable by the suite",
               "set files.audit_log in the target file (or --sidecar-audit-log)"),
    Capability("metrics:gateway", "observability", "§6", "gateway /metrics",
               "set metrics.gateway in the target file (or --sidecar-metrics-gateway)"),
    Capability("metrics:explainer", "observability", "§6", "explainer /metrics",
               "set metrics.explainer in the target file (or --sidecar-metrics-explainer)"),
    Capability("structured_logs", "observability", "§7",
               "the gateway's service log is readable by the suite",
               "set files.log in the target file (sidecar-stack serve --log-file)"),
    Capability("route_table", "observability", "§2, §8",
               "the target file lists every route the gateway serves",
               "list them under routes in the target file ('METHOD /path')"),
    Capability("readiness_switch", "observability", "§2.10",
               "a dependency of /readyz can be made unavailable and restored",
               "declare 'readiness_switch' (the embedded stack offers one)"),
    Capability("backpressure", "performance", "§5", "backlog-driven backpressure",
               "implement backlog-driven backpressure in the explainer, then "
               "declare 'backpressure' in the target file"),
    Capability("status_store", "resilience", "§7", "the JSON status store is readable",
               "set files.status_json in the target file (or --sidecar-status-json)"),
    Capability("artifacts", "resilience", "§7", "the artifact root is readable",
               "set files.artifacts in the target file (or --sidecar-artifacts)"),
    Capability("chaos_control", "resilience", "§7", "the chaos control file is writable",
               "set files.chaos_control in the target file (or --sidecar-chaos-control)"),
    Capability("chaos_flags", "resilience", "§7",
               "every flag of the chaos control file takes effect",
               "implement the §7 chaos flags (fail-attribution, slow-sae, drop-s3, "
               "rate-limit-spike, upstream-errors, upstream-latency, dependency-outage), "
               "then declare 'chaos_flags' in the target file"),
    Capability("circuit_breaker", "resilience", "§10", "the upstream circuit breaker",
               "implement the upstream circuit breaker (503 upstream_unavailable while "
               "open), then declare 'circuit_breaker' in the target file"),
)

CAPABILITIES: dict[str, Capability] = {cap.name: cap for cap in _ALL}


def extended_features(profile: str) -> list[str]:
    """The profile's optional features, in registry order."""
    return [cap.name for cap in _ALL if cap.profile == profile and cap.extended]


def capability_names() -> list[str]:
    return list(CAPABILITIES)


# A target given only by URL is assumed to offer the v1 core every Sidecar must serve.
URL_DEFAULTS = frozenset({"chat", "chat_stream", "health", "explain", "trace_stream",
                          "cancel", "client_trace_id"})


def did_you_mean(unknown: Iterable[str]) -> str:
    """' (did you mean ...?)' naming the closest capability of each unknown name, or ''."""
    close = [match for name in unknown
             for match in difflib.get_close_matches(name, CAPABILITIES, n=1, cutoff=0.6)]
    return f" (did you mean {', '.join(map(repr, close))}?)" if close else ""


def unknown_capabilities(names: Iterable[str]) -> list[str]:
    """The names that are not in the registry (a test-authoring error)."""
    return [name for name in names if name not in CAPABILITIES]


def missing_capabilities(needed: Iterable[str], offered: frozenset[str]) -> list[Capability]:
    """The needed capabilities the target does not offer, in the order needed."""
    return [CAPABILITIES[name] for name in needed if name not in offered]
