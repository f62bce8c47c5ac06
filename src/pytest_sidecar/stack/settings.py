"""StackSettings: the reference stack's configuration, read from the environment.

Names follow the contract (AUTH_MODE, STATUS_JSON_PATH, LLM_PROXY_URL, ...). A bad
value refuses to start with a message naming the variable, the value and what is valid.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .defects import DEFECTS, UnknownDefect
from .defects import ENV as DEFECTS_ENV
from .defects import parse as parse_defects
from .exceptions import StackError
from .ratelimit import DEFAULTS, Limit
from .variants import ENV as VARIANTS_ENV
from .variants import UnknownVariant
from .variants import parse as parse_variants

# Every environment variable the stack reads (a deployment's ConfigMap may set only
# these; the platform specs check the chart's ConfigMap against this list).
ENV_VARS = (
    "AUTH_MODE", "AUTH_TOKENS_JSON", "STATUS_BACKEND", "STATUS_JSON_PATH", "LLM_PROXY_URL",
    "FAKE_UPSTREAM_LATENCY_MS", "FAKE_UPSTREAM_TOKEN_MS", "EXPLAINER_WORKERS",
    "EXPLAINER_SENTENCE_BASE_MS", "EXPLAINER_SENTENCE_MS", "EXPLAINER_TOKEN_MS",
    "TRACE_TTL_DAYS", "TRACE_TTL_SECONDS", "MAX_BODY_BYTES", "SSE_KEEPALIVE_SECONDS",
    "UPSTREAM_TIMEOUT_SECONDS", "BREAKER_FAILURES", "BREAKER_COOLDOWN_S",
    "RATE_LIMIT_READ_RPS", "RATE_LIMIT_READ_BURST",
    "RATE_LIMIT_WRITE_RPS", "RATE_LIMIT_WRITE_BURST", "RATE_LIMITS_JSON",
    "CORS_ALLOW_ORIGINS", "WEBHOOK_ALLOW_HOSTS", "WEBHOOK_BACKOFF_MS", "AUDIT_LOG_PATH",
    "CHAOS_CONTROL_PATH", "SIDECAR_DEFECTS", "SIDECAR_VARIANTS", "SERVED_MODELS",
)

# The model the fake upstream answers as; the suite's own default model has the same name
# (a self-test keeps the two equal).
FAKE_MODEL = "sidecar-fake-1"


class StackSettingError(StackError, ValueError):
    """The stack refuses to start: a setting is invalid."""


@dataclass(frozen=True)
class TokenInfo:
    tenant_id: str
    scopes: frozenset[str]
    subject: str


@dataclass(frozen=True)
class StackSettings:
    state_dir: str
    auth_mode: str = "static"
    tokens: Mapping[str, TokenInfo] = field(default_factory=dict)
    llm_proxy_url: str | None = None  # None: the built-in fake upstream
    fake_latency_ms: float = 5.0
    fake_token_ms: float = 1.0
    explainer_workers: int = 4
    sentence_base_ms: float = 40.0
    sentence_ms: float = 30.0  # per output sentence
    token_ms: float = 20.0  # per output token: token work is ~5-10x sentence work
    ttl_seconds: float = 7 * 86400.0
    max_body_bytes: int = 1024 * 1024
    keepalive_s: float = 15.0
    upstream_timeout_s: float = 30.0
    breaker_failures: int = 5  # consecutive upstream failures that open the breaker
    breaker_cooldown_s: float = 10.0
    rate_limits: Mapping[str, Limit] = field(default_factory=lambda: dict(DEFAULTS))
    tenant_rate_limits: Mapping[str, Mapping[str, Limit]] = field(default_factory=dict)
    cors_origins: frozenset[str] = frozenset()
    webhook_allow_hosts: frozenset[str] = frozenset()
    webhook_backoff_s: float = 0.5
    audit_log: str | None = None  # default: <state dir>/audit.log
    chaos_control: str | None = None  # default: <state dir>/chaos.json
    status_json: str | None = None  # default: <state dir>/status.json
    defects: frozenset[str] = frozenset()  # opt-in bugs for the detection matrix
    variants: tuple[str, ...] = ()  # allowed variations (stack/variants.py), by name
    served_models: tuple[str, ...] = (FAKE_MODEL,)  # what GET /v1/models lists

    @property
    def status_json_path(self) -> str:
        return self.status_json or os.path.join(self.state_dir, "status.json")

    @property
    def idempotency_path(self) -> str:
        return os.path.join(self.state_dir, "idempotency.json")

    @property
    def audit_log_path(self) -> str:
        return self.audit_log or os.path.join(self.state_dir, "audit.log")

    @property
    def chaos_control_path(self) -> str:
        return self.chaos_control or os.path.join(self.state_dir, "chaos.json")

    @property
    def shared_db_path(self) -> str:
        """The database the gateway and explainer processes share, beside the §7 file."""
        return self.status_json_path + ".db"

    @property
    def webhooks_path(self) -> str:
        return os.path.join(self.state_dir, "webhooks.db")

    @property
    def artifact_root(self) -> str:
        return os.path.join(self.state_dir, "artifacts")


# `sidecar-stack serve --suite`: defaults for running pytest-sidecar against this stack
# (the embedded stack uses them too). Rate limits high enough that parallel specs never
# throttle each other (the rate-limit spec starts its own stack with tight limits), a
# CORS origin, webhooks to the suite's receiver on 127.0.0.1 with quick retries, and 8
# explainer workers so the load specs' default mix (40 chats/s, half explained, 30 % of
# those at token granularity: ~5 erlangs of work) runs at ~65 % utilisation.
# The environment still wins over each of them.
SUITE_DEFAULTS = {
    "RATE_LIMIT_READ_RPS": "2000", "RATE_LIMIT_READ_BURST": "4000",
    "RATE_LIMIT_WRITE_RPS": "1000", "RATE_LIMIT_WRITE_BURST": "2000",
    "CORS_ALLOW_ORIGINS": "https://console.sidecar.test",
    "WEBHOOK_ALLOW_HOSTS": "127.0.0.1", "WEBHOOK_BACKOFF_MS": "100",
    "EXPLAINER_WORKERS": "8",
    # Resilience specs wait out the upstream timeout and the breaker's cooldown: short.
    "UPSTREAM_TIMEOUT_SECONDS": "2", "BREAKER_COOLDOWN_S": "2",
    # Keep-alive comments within a few seconds' stream, so the spec sees them (§2.5 asks
    # for at least one every 15 s; more often is allowed).
    "SSE_KEEPALIVE_SECONDS": "1",
    # A TTL short enough for the expiry spec to watch (a dedicated stack needs none).
    "TRACE_TTL_SECONDS": "10",
    # Tenant C is the one the rate-limit specs exhaust: tight enough to reach in a burst,
    # and refilled in 2 s, since each exact burst first waits for a full bucket.
    "RATE_LIMITS_JSON": json.dumps({"tenant-c": {"read": {"rps": 10, "burst": 20},
                                                 "write": {"rps": 5, "burst": 10}}}),
}


def _number(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise StackSettingError(
            f"{name}={raw!r}: not a number; valid: a number >= {minimum:g}") from None
    if value < minimum:
        raise StackSettingError(
            f"{name}={raw!r}: below {minimum:g}; valid: a number >= {minimum:g}")
    return value


def parse_tokens(raw: str) -> dict[str, TokenInfo]:
    """Parse AUTH_TOKENS_JSON: token -> {tenant_id, scopes, subject}."""
    try:
        data: Any = json.loads(raw)
    except json.JSONDecodeError:
        raise StackSettingError("AUTH_TOKENS_JSON: not valid JSON") from None
    if not isinstance(data, dict) or not data:
        raise StackSettingError("AUTH_TOKENS_JSON: must be a non-empty JSON object")
    tokens = {}
    for index, (token, info) in enumerate(data.items()):
        # Never echo a token: entries are named by position.
        if not isinstance(info, dict) or not isinstance(info.get("tenant_id"), str):
            raise StackSettingError(
                f"AUTH_TOKENS_JSON: entry #{index + 1} needs a tenant_id string")
        scopes = info.get("scopes", [])
        bad = [s for s in scopes if s not in ("traces:read", "traces:write")]
        if not isinstance(scopes, list) or bad:
            raise StackSettingError(
                f"AUTH_TOKENS_JSON: entry #{index + 1}: scopes must be a list of "
                                    "traces:read, traces:write"
            )
        tokens[token] = TokenInfo(info["tenant_id"], frozenset(scopes),
                                  str(info.get("subject", info["tenant_id"])))
    return tokens


def parse_tenant_limits(raw: str) -> dict[str, dict[str, Limit]]:
    """RATE_LIMITS_JSON: {tenant_id: {read|write: {rps, burst}}}."""
    try:
        data: Any = json.loads(raw)
    except json.JSONDecodeError:
        raise StackSettingError("RATE_LIMITS_JSON: not valid JSON") from None
    out: dict[str, dict[str, Limit]] = {}
    try:
        for tenant, categories in data.items():
            out[tenant] = {category: Limit(float(v["rps"]), float(v["burst"]))
                           for category, v in categories.items() if category in DEFAULTS}
    except (AttributeError, KeyError, TypeError, ValueError):
        raise StackSettingError('RATE_LIMITS_JSON: valid: {"<tenant>": {"read"|"write": '
                                '{"rps": <number>, "burst": <number>}}}') from None
    return out


def from_env(state_dir: str, env: Mapping[str, str] | None = None) -> StackSettings:
    """Build StackSettings from environment variables (see docs/reference-stack.md)."""
    env = os.environ if env is None else env
    try:
        variants = parse_variants(env.get(VARIANTS_ENV, ""))
    except UnknownVariant as exc:
        raise StackSettingError(f"{VARIANTS_ENV}: {exc}") from None
    # A variation's settings are part of what it is: they win over the environment.
    try:
        chosen = parse_defects(env.get(DEFECTS_ENV, ""))
    except UnknownDefect as exc:
        raise StackSettingError(f"{DEFECTS_ENV}: {exc}") from None
    envs = [*(variant.env for variant in variants),
            *(DEFECTS[name].env for name in sorted(chosen))]
    overrides = {k: v for env_of in envs for k, v in env_of.items()}
    if overrides:
        env = {**env, **overrides}
    backend = env.get("STATUS_BACKEND", "json")
    if backend != "json":
        raise StackSettingError(f"STATUS_BACKEND={backend!r}: valid: json")
    auth_mode = env.get("AUTH_MODE", "static")
    if auth_mode not in ("static", "none"):
        raise StackSettingError(f"AUTH_MODE={auth_mode!r}: valid: static, none")
    tokens: dict[str, TokenInfo] = {}
    if env.get("AUTH_TOKENS_JSON"):
        tokens = parse_tokens(env["AUTH_TOKENS_JSON"])
    proxy = env.get("LLM_PROXY_URL") or None
    if proxy is not None and not proxy.startswith(("http://", "https://")):
        raise StackSettingError(f"LLM_PROXY_URL={proxy!r}: valid: an http(s) URL")
    ttl = _number(env, "TRACE_TTL_DAYS", 7.0, 0.0) * 86400.0
    if env.get("TRACE_TTL_SECONDS"):
        ttl = _number(env, "TRACE_TTL_SECONDS", ttl, 0.1)
    workers = int(_number(env, "EXPLAINER_WORKERS", 4, 1))
    limits = {category: Limit(
        _number(env, f"RATE_LIMIT_{category.upper()}_RPS", default.rps),
        _number(env, f"RATE_LIMIT_{category.upper()}_BURST", default.burst, 1))
        for category, default in DEFAULTS.items()}
    tenant_limits = parse_tenant_limits(env["RATE_LIMITS_JSON"]) if env.get(
        "RATE_LIMITS_JSON") else {}
    origins = frozenset(o.strip() for o in env.get("CORS_ALLOW_ORIGINS", "").split(",")
                        if o.strip())
    try:
        defects = parse_defects(env.get(DEFECTS_ENV, ""))
    except UnknownDefect as exc:
        raise StackSettingError(f"{DEFECTS_ENV}: {exc}") from None
    if "*" in origins:
        raise StackSettingError("CORS_ALLOW_ORIGINS: '*' is refused (credentials are allowed); "
                                "valid: a comma list of origins like https://app.example")
    return StackSettings(
        state_dir=os.path.abspath(state_dir),
        auth_mode=auth_mode,
        tokens=tokens,
        llm_proxy_url=proxy.rstrip("/") if proxy else None,
        fake_latency_ms=_number(env, "FAKE_UPSTREAM_LATENCY_MS", 5.0),
        fake_token_ms=_number(env, "FAKE_UPSTREAM_TOKEN_MS", 1.0),
        explainer_workers=workers,
        sentence_base_ms=_number(env, "EXPLAINER_SENTENCE_BASE_MS", 40.0),
        sentence_ms=_number(env, "EXPLAINER_SENTENCE_MS", 30.0),
        token_ms=_number(env, "EXPLAINER_TOKEN_MS", 20.0),
        ttl_seconds=ttl,
        max_body_bytes=int(_number(env, "MAX_BODY_BYTES", 1024 * 1024, 1)),
        keepalive_s=_number(env, "SSE_KEEPALIVE_SECONDS", 15.0, 0.05),
        upstream_timeout_s=_number(env, "UPSTREAM_TIMEOUT_SECONDS", 30.0, 0.1),
        breaker_failures=int(_number(env, "BREAKER_FAILURES", 5, 1)),
        breaker_cooldown_s=_number(env, "BREAKER_COOLDOWN_S", 10.0, 0.1),
        rate_limits=limits,
        tenant_rate_limits=tenant_limits,
        cors_origins=origins,
        webhook_allow_hosts=frozenset(h.strip().lower() for h in
                                      env.get("WEBHOOK_ALLOW_HOSTS", "").split(",") if h.strip()),
        webhook_backoff_s=_number(env, "WEBHOOK_BACKOFF_MS", 500.0) / 1000,
        audit_log=env.get("AUDIT_LOG_PATH") or None,
        chaos_control=env.get("CHAOS_CONTROL_PATH") or None,
        status_json=env.get("STATUS_JSON_PATH") or None,
        defects=defects,
        variants=tuple(variant.name for variant in variants),
        served_models=tuple(m.strip() for m in env.get("SERVED_MODELS", FAKE_MODEL).split(",")
                            if m.strip()) or (FAKE_MODEL,),
    )
