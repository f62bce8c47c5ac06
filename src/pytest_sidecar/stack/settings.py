"""StackSettings: the reference stack's configuration, read from the environment.

`SETTINGS` is the one table of them (as `options.OPTIONS` is the plugin's): the field,
the environment variable, the default and the parser of each, stated once. Environment
names follow the contract (AUTH_MODE, TRACE_TTL_DAYS, BREAKER_COOLDOWN_S, ...) and keep
their units; inside, every duration is in seconds and its name ends in `_s`. A bad value
refuses to start with a message naming the variable, the value and what is valid.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .defects import DEFECTS, UnknownDefect
from .defects import ENV as DEFECTS_ENV
from .defects import parse as parse_defects
from .exceptions import StackError
from .ratelimit import DEFAULTS, Limit
from .variants import ENV as VARIANTS_ENV
from .variants import VARIANTS, UnknownVariant
from .variants import parse as parse_variants

__all__ = ["ENV_VARS", "SETTINGS", "SUITE_DEFAULTS", "Setting", "StackSettingError",
           "StackSettings", "TokenInfo", "from_env"]

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


Parser = Callable[[str, str], Any]  # (variable, raw text) -> value, or StackSettingError


@dataclass(frozen=True)
class Setting:
    """One setting: the StackSettings field it fills, the variable that sets it, the value
    when the variable is unset or empty, and how its text becomes a value."""

    field: str
    env: str
    default: Any
    parse: Parser


def number(minimum: float = 0.0, scale: float = 1.0) -> Parser:
    """A number >= minimum (in the variable's unit), times `scale` (to seconds)."""
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise StackSettingError(
                f"{name}={raw!r}: not a number; valid: a number >= {minimum:g}") from None
        if value < minimum:
            raise StackSettingError(
                f"{name}={raw!r}: below {minimum:g}; valid: a number >= {minimum:g}")
        return value * scale
    return parse


def integer(minimum: int) -> Parser:
    def parse(name: str, raw: str) -> int:
        return int(number(minimum)(name, raw))
    return parse


def choice(*valid: str) -> Parser:
    def parse(name: str, raw: str) -> str:
        if raw not in valid:
            raise StackSettingError(f"{name}={raw!r}: valid: {', '.join(valid)}")
        return raw
    return parse


def text(name: str, raw: str) -> str:
    return raw


def http_url(name: str, raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise StackSettingError(f"{name}={raw!r}: valid: an http(s) URL")
    return raw.rstrip("/")


def comma_list(name: str, raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def origins(name: str, raw: str) -> frozenset[str]:
    found = frozenset(comma_list(name, raw))
    if "*" in found:
        raise StackSettingError(f"{name}: '*' is refused (credentials are allowed); "
                                "valid: a comma list of origins like https://app.example")
    return found


def hosts(name: str, raw: str) -> frozenset[str]:
    return frozenset(host.lower() for host in comma_list(name, raw))


def models(name: str, raw: str) -> tuple[str, ...]:
    return comma_list(name, raw) or (FAKE_MODEL,)


def defect_names(name: str, raw: str) -> frozenset[str]:
    try:
        return parse_defects(raw)
    except UnknownDefect as exc:
        raise StackSettingError(f"{name}: {exc}") from None


def variant_names(name: str, raw: str) -> tuple[str, ...]:
    try:
        return tuple(variant.name for variant in parse_variants(raw))
    except UnknownVariant as exc:
        raise StackSettingError(f"{name}: {exc}") from None


def parse_tokens(name: str, raw: str) -> dict[str, TokenInfo]:
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


def parse_tenant_limits(name: str, raw: str) -> dict[str, dict[str, Limit]]:
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



DAY_S = 86400.0
MS = 0.001  # seconds in a millisecond

# Every setting, once. Where two variables fill one field, the later one wins when set
# (TRACE_TTL_SECONDS over TRACE_TTL_DAYS); the first row's default is the field's.
SETTINGS: tuple[Setting, ...] = (
    Setting("auth_mode", "AUTH_MODE", "static", choice("static", "none")),
    Setting("tokens", "AUTH_TOKENS_JSON", {}, parse_tokens),
    Setting("status_backend", "STATUS_BACKEND", "json", choice("json")),
    Setting("status_json", "STATUS_JSON_PATH", None, text),  # None: <state dir>/status.json
    Setting("llm_proxy_url", "LLM_PROXY_URL", None, http_url),  # None: the fake upstream
    Setting("fake_latency_s", "FAKE_UPSTREAM_LATENCY_MS", 0.005, number(scale=MS)),
    Setting("fake_token_s", "FAKE_UPSTREAM_TOKEN_MS", 0.001, number(scale=MS)),
    Setting("explainer_workers", "EXPLAINER_WORKERS", 4, integer(1)),
    Setting("sentence_base_s", "EXPLAINER_SENTENCE_BASE_MS", 0.040, number(scale=MS)),
    # per output sentence, and per output token: token work is ~5-10x sentence work
    Setting("sentence_s", "EXPLAINER_SENTENCE_MS", 0.030, number(scale=MS)),
    Setting("token_s", "EXPLAINER_TOKEN_MS", 0.020, number(scale=MS)),
    Setting("ttl_s", "TRACE_TTL_DAYS", 7 * DAY_S, number(scale=DAY_S)),
    Setting("ttl_s", "TRACE_TTL_SECONDS", 7 * DAY_S, number(0.1)),
    Setting("max_body_bytes", "MAX_BODY_BYTES", 1024 * 1024, integer(1)),
    Setting("keepalive_s", "SSE_KEEPALIVE_SECONDS", 15.0, number(0.05)),
    Setting("upstream_timeout_s", "UPSTREAM_TIMEOUT_SECONDS", 30.0, number(0.1)),
    # consecutive upstream failures that open the breaker, and how long it stays open
    Setting("breaker_failures", "BREAKER_FAILURES", 5, integer(1)),
    Setting("breaker_cooldown_s", "BREAKER_COOLDOWN_S", 10.0, number(0.1)),
    Setting("read_rps", "RATE_LIMIT_READ_RPS", DEFAULTS["read"].rps, number()),
    Setting("read_burst", "RATE_LIMIT_READ_BURST", DEFAULTS["read"].burst, number(1)),
    Setting("write_rps", "RATE_LIMIT_WRITE_RPS", DEFAULTS["write"].rps, number()),
    Setting("write_burst", "RATE_LIMIT_WRITE_BURST", DEFAULTS["write"].burst, number(1)),
    Setting("tenant_rate_limits", "RATE_LIMITS_JSON", {}, parse_tenant_limits),
    Setting("cors_origins", "CORS_ALLOW_ORIGINS", frozenset(), origins),
    Setting("webhook_allow_hosts", "WEBHOOK_ALLOW_HOSTS", frozenset(), hosts),
    Setting("webhook_backoff_s", "WEBHOOK_BACKOFF_MS", 0.5, number(scale=MS)),
    Setting("audit_log", "AUDIT_LOG_PATH", None, text),  # None: <state dir>/audit.log
    Setting("chaos_control", "CHAOS_CONTROL_PATH", None, text),  # None: <state dir>/chaos.json
    Setting("defects", DEFECTS_ENV, frozenset(), defect_names),  # opt-in bugs (detection)
    Setting("variants", VARIANTS_ENV, (), variant_names),  # allowed variations, by name
    Setting("served_models", "SERVED_MODELS", (FAKE_MODEL,), models),  # GET /v1/models
)

# Every environment variable the stack reads (a deployment's ConfigMap may set only
# these; the platform specs check the chart's ConfigMap against this list).
ENV_VARS = tuple(setting.env for setting in SETTINGS)


def default_of(name: str) -> Any:
    """The default of a StackSettings field (its first row's in SETTINGS), as a dataclass
    field: a mapping is copied for each instance, as dataclasses require."""
    value = next(setting.default for setting in SETTINGS if setting.field == name)
    if isinstance(value, dict):
        return field(default_factory=lambda: dict(value))
    return field(default=value)


@dataclass(frozen=True)
class StackSettings:
    """The resolved settings (see SETTINGS for each one's variable and default)."""

    state_dir: str
    auth_mode: str = default_of("auth_mode")
    tokens: Mapping[str, TokenInfo] = default_of("tokens")
    status_backend: str = default_of("status_backend")
    status_json: str | None = default_of("status_json")
    llm_proxy_url: str | None = default_of("llm_proxy_url")
    fake_latency_s: float = default_of("fake_latency_s")
    fake_token_s: float = default_of("fake_token_s")
    explainer_workers: int = default_of("explainer_workers")
    sentence_base_s: float = default_of("sentence_base_s")
    sentence_s: float = default_of("sentence_s")
    token_s: float = default_of("token_s")
    ttl_s: float = default_of("ttl_s")
    max_body_bytes: int = default_of("max_body_bytes")
    keepalive_s: float = default_of("keepalive_s")
    upstream_timeout_s: float = default_of("upstream_timeout_s")
    breaker_failures: int = default_of("breaker_failures")
    breaker_cooldown_s: float = default_of("breaker_cooldown_s")
    read_rps: float = default_of("read_rps")
    read_burst: float = default_of("read_burst")
    write_rps: float = default_of("write_rps")
    write_burst: float = default_of("write_burst")
    tenant_rate_limits: Mapping[str, Mapping[str, Limit]] = default_of("tenant_rate_limits")
    cors_origins: frozenset[str] = default_of("cors_origins")
    webhook_allow_hosts: frozenset[str] = default_of("webhook_allow_hosts")
    webhook_backoff_s: float = default_of("webhook_backoff_s")
    audit_log: str | None = default_of("audit_log")
    chaos_control: str | None = default_of("chaos_control")
    defects: frozenset[str] = default_of("defects")
    variants: tuple[str, ...] = default_of("variants")
    served_models: tuple[str, ...] = default_of("served_models")

    @property
    def rate_limits(self) -> dict[str, Limit]:
        """The default buckets per category (a tenant's own, if any, win)."""
        return {"read": Limit(self.read_rps, self.read_burst),
                "write": Limit(self.write_rps, self.write_burst)}

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


def from_env(state_dir: str, env: Mapping[str, str] | None = None) -> StackSettings:
    """Build StackSettings from environment variables (see docs/reference-stack.md)."""
    env = os.environ if env is None else env
    # A variation's or a defect's settings are part of what it is: they win over the
    # environment.
    # (The same parsers as the table's rows: one error message for a bad name.)
    variants = variant_names(VARIANTS_ENV, env.get(VARIANTS_ENV, ""))
    chosen = defect_names(DEFECTS_ENV, env.get(DEFECTS_ENV, ""))
    overrides = {k: v for env_of in [*(VARIANTS[name].env for name in variants),
                                     *(DEFECTS[name].env for name in sorted(chosen))]
                 for k, v in env_of.items()}
    if overrides:
        env = {**env, **overrides}
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = env.get(setting.env)
        if raw not in (None, ""):
            values[setting.field] = setting.parse(setting.env, raw)
    return StackSettings(state_dir=os.path.abspath(state_dir), **values)
