"""The target: what deployment is under test, and the target file that describes it.

The target file is a public interface (other tools write it): YAML or JSON, validated
against `schemas/target.schema.json`, with `${VAR}` / `${VAR:-default}` substitution in
string values so CI secrets stay out of files.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

from .errors import SidecarError
from .options import OPTIONS
from .vocabulary.capabilities import URL_DEFAULTS, capability_names, did_you_mean
from .vocabulary.defaults import (
    CONTRACT_RATE_LIMITS,
    DEFAULT_MODEL,
    SHORT_TTL_LIMIT_S,
    THROTTLE_TENANT,
)

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class TargetFileError(SidecarError, ValueError):
    """The target file is unreadable, malformed, or does not match the schema."""


@dataclass(frozen=True)
class Tokens:
    write: str | None = None
    read: str | None = None


@dataclass(frozen=True)
class Tenant:
    id: str
    tokens: Tokens = field(default_factory=Tokens)


@dataclass(frozen=True)
class Target:
    """One deployment under test, as the suite sees it."""

    url: str
    origin: str  # "embedded", "file <path>" or "url"
    metrics_gateway: str | None = None
    metrics_explainer: str | None = None
    tenants: Mapping[str, Tenant] = field(default_factory=dict)
    status_json: str | None = None
    audit_log: str | None = None
    artifacts: str | None = None
    chaos_control: str | None = None
    log: str | None = None
    declared: frozenset[str] = frozenset()
    declared_by: str = "the target file"  # where `declared` came from, for the header
    trace_ttl_seconds: float | None = None
    rate_limits: Mapping[str, Any] = field(default_factory=dict)  # see limits_for()
    cors_origins: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    openapi: str | None = None  # the target's API document: a path or an http(s) URL
    # The model named in the chats the suite sends: a deployment serves its own models.
    model: str = DEFAULT_MODEL
    # The deployment's manifests (§8): a directory holding helm/, argocd/, karpenter/.
    # None means the target gives none, and the platform profile is untested.
    manifests: str | None = None
    implementation: Mapping[str, Any] = field(default_factory=dict)  # who made it
    resilience: Mapping[str, Any] = field(default_factory=dict)  # §10 settings; see schema
    extensions: Mapping[str, Any] = field(default_factory=dict)

    @property
    def capabilities(self) -> frozenset[str]:
        """Declared capabilities plus those implied by what the target file gives."""
        return self.declared | self.derived

    @property
    def derived(self) -> frozenset[str]:
        """Capabilities implied by what the target gives (files, metrics URLs, tenants)."""
        return frozenset(name for name, present in DERIVED.items() if present(self))

    def limits_for(self, tenant: str) -> dict[str, dict[str, float]]:
        """The read/write limits of a tenant key: its own override, else the target's,
        else the contract's defaults (§3)."""
        overrides = self.rate_limits.get("tenants", {}).get(tenant, {})
        return {category: dict(overrides.get(category) or self.rate_limits.get(category)
                               or default)
                for category, default in CONTRACT_RATE_LIMITS.items()}

    def secrets(self) -> Iterator[str]:
        """Every token value, for the redactor."""
        for tenant in self.tenants.values():
            for value in (tenant.tokens.write, tenant.tokens.read):
                if value:
                    yield value


    def load_tenants(self) -> tuple[tuple[str, str], ...]:
        """(tenant id, write token) of every tenant with a write token but the one reserved
        for throttling; one anonymous caller when the target has none (AUTH_MODE=none)."""
        found = tuple((t.id, t.tokens.write) for key, t in self.tenants.items()
                      if t.tokens.write and key != THROTTLE_TENANT)
        return found or (("anonymous", ""),)


def _two_tenants(target: Target) -> bool:
    a, b = target.tenants.get("a"), target.tenants.get("b")
    return bool(
        a and b and a.id != b.id
        and a.tokens.write and a.tokens.read and b.tokens.write and b.tokens.read
    )


# Capabilities a target has because of what its file gives, not because it says so.
DERIVED: dict[str, Callable[[Target], bool]] = {
    "tenants:2": _two_tenants,
    "metrics:gateway": lambda t: bool(t.metrics_gateway),
    "metrics:explainer": lambda t: bool(t.metrics_explainer),
    "status_store": lambda t: bool(t.status_json),
    "audit_log": lambda t: bool(t.audit_log),
    "artifacts": lambda t: bool(t.artifacts),
    "chaos_control": lambda t: bool(t.chaos_control),
    "route_table": lambda t: bool(t.routes),
    "structured_logs": lambda t: bool(t.log),
    "short_ttl": lambda t: t.trace_ttl_seconds is not None
    and t.trace_ttl_seconds <= SHORT_TTL_LIMIT_S,
}


def _schema() -> dict[str, Any]:
    text = resources.files("pytest_sidecar").joinpath("schemas/target.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _substitute(value: Any, env: Mapping[str, str], where: str) -> Any:
    if isinstance(value, str):
        def repl(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise TargetFileError(f"{where}: environment variable {name} is not set")
        return _ENV_REF.sub(repl, value)
    if isinstance(value, dict):
        return {k: _substitute(v, env, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def parse_target(data: Any, origin: str, env: Mapping[str, str] | None = None) -> Target:
    """Validate a loaded target document and build the Target."""
    import jsonschema

    if not isinstance(data, dict):
        raise TargetFileError(
            f"{origin}: the top level must be a mapping, got {type(data).__name__}")
    try:
        data = _substitute(data, os.environ if env is None else env, "$")
    except TargetFileError as exc:
        raise TargetFileError(f"{origin}: {exc}") from None
    validator = jsonschema.Draft202012Validator(_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        where = "$" + "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.path)
        message = error.message
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = list(error.schema.get("properties", {}))
            extra = sorted(k for k in error.instance if k not in known and not k.startswith("x-"))
            message = f"unknown key {', '.join(map(repr, extra))}; valid: {', '.join(known)}"
            if error.schema.get("patternProperties"):
                message += " (or x-... extensions)"
        raise TargetFileError(f"{origin}: {where}: {message}")
    unknown = sorted(set(data.get("capabilities", [])) - set(capability_names()))
    if unknown:
        raise TargetFileError(
            f"{origin}: $.capabilities: unknown {', '.join(unknown)}{did_you_mean(unknown)}; "
            f"valid: {', '.join(capability_names())}"
        )
    tenants = {
        key: Tenant(id=item["id"], tokens=Tokens(**item.get("tokens", {})))
        for key, item in data.get("tenants", {}).items()
    }
    metrics, files = data.get("metrics", {}), data.get("files", {})
    if "capabilities" in data:
        declared, declared_by = frozenset(data["capabilities"]), f"{origin}: capabilities"
    else:  # the same declaration as a bare --sidecar-url
        declared, declared_by = core_declaration(tenants)
    return Target(
        url=data["url"].rstrip("/"),
        origin=origin,
        metrics_gateway=metrics.get("gateway"),
        metrics_explainer=metrics.get("explainer"),
        tenants=tenants,
        status_json=files.get("status_json"),
        audit_log=files.get("audit_log"),
        artifacts=files.get("artifacts"),
        chaos_control=files.get("chaos_control"),
        log=files.get("log"),
        declared=declared,
        declared_by=declared_by,
        trace_ttl_seconds=data.get("trace_ttl_seconds"),
        rate_limits=data.get("rate_limits", {}),
        cors_origins=tuple(data.get("cors", {}).get("allowed_origins", ())),
        routes=tuple(data.get("routes", ())),
        openapi=data.get("openapi"),
        model=data.get("model", DEFAULT_MODEL),
        manifests=data.get("manifests"),
        implementation=data.get("implementation", {}),
        resilience=data.get("resilience", {}),
        extensions={k: v for k, v in data.items() if k.startswith("x-")},
    )


def load_target_file(path: str, env: Mapping[str, str] | None = None) -> Target:
    """Read, substitute and validate a YAML or JSON target file."""
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise TargetFileError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        # YAML 1.2 is a superset of JSON, so one parser reads both.
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise TargetFileError(f"{path}: not valid YAML/JSON{at}") from None
    return parse_target(data, f"file {path}", env)


def core_declaration(tenants: Mapping[str, Tenant]) -> tuple[frozenset[str], str]:
    """What a target that lists no capabilities declares: the v1 core every Sidecar
    serves, and 'auth' when tokens are given."""
    tokens = any(t.tokens.write or t.tokens.read for t in tenants.values())
    return (URL_DEFAULTS | ({"auth"} if tokens else set()),
            "assumed: the v1 core" + (" and auth (tokens given)" if tokens else "")
            + "; no capabilities listed")


def target_from_url(url: str) -> Target:
    """A bare URL target: the same declaration as a target file without capabilities."""
    declared, declared_by = core_declaration({})
    return Target(url=url, origin="url", declared=declared, declared_by=declared_by)


def apply_overrides(target: Target, explicit: Mapping[str, Any]) -> Target:
    """Apply the per-value options (tokens, tenants, metrics URLs, file paths) that were
    given over the target's own values."""
    tenants = dict(target.tenants)
    for key, id_opt, write_opt, read_opt in (
        ("a", "tenant_a", "token_write", "token_read"),
        ("b", "tenant_b", "token_b_write", "token_b_read"),
    ):
        if not {id_opt, write_opt, read_opt} & explicit.keys():
            continue
        current = tenants.get(key, Tenant(id=f"tenant-{key}"))
        tenants[key] = Tenant(
            id=explicit.get(id_opt, current.id),
            tokens=Tokens(
                write=explicit.get(write_opt, current.tokens.write),
                read=explicit.get(read_opt, current.tokens.read),
            ),
        )
    changes: dict[str, Any] = {"tenants": tenants}
    for option in OPTIONS:
        if option.overrides_target and option.name in explicit:
            changes[option.name] = explicit[option.name]
    if "capabilities" in explicit:
        changes["declared"] = explicit["capabilities"]
        changes["declared_by"] = "--sidecar-capabilities"
    elif target.declared_by.startswith("assumed") and tenants != dict(target.tenants):
        changes["declared"], changes["declared_by"] = core_declaration(tenants)
    return replace(target, **changes)
