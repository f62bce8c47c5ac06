"""What the control plane is configured with: environment variables, then the CLI.

Everything a run may touch is configured here, never taken from a request: the targets
(by name), the suites (by name: test paths under the suite root), the audit log it may
search, the data directory it writes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .exceptions import ControlPlaneError

SCOPES = ("tests.read", "tests.run", "observability.read", "deployments.read",
          "autoscaling.read", "security.read", "compliance.read")


class ControlPlaneSettingError(ControlPlaneError, ValueError):
    """A setting that cannot be used; the message names it and what is valid."""


@dataclass(frozen=True)
class OperatorToken:
    subject: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class Gate:
    """The quality gate every finished run is judged by."""

    max_failures: int = 0
    min_tests: int = 1
    max_skips: int | None = None
    slo_must_pass: bool = True  # every SLO verdict the run measured must be PASS

    def as_dict(self) -> dict[str, Any]:
        return {"max_failures": self.max_failures, "min_tests": self.min_tests,
                "max_skips": self.max_skips, "slo_must_pass": self.slo_must_pass}


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8088
    data_dir: str = "controlplane-data"
    auth_mode: str = "none"  # or "static"
    tokens: Mapping[str, OperatorToken] = field(default_factory=dict)
    # name -> {"url": ...} | {"target_file": ...} | {} (the embedded stack)
    targets: Mapping[str, Mapping[str, str]] = field(
        default_factory=lambda: {"embedded": {}})
    suite_root: str = "."  # where runs start (the repository with tests/ and conftest.py)
    suites: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: {
        "e2e": ("tests/e2e",), "chaos": ("tests/chaos",), "load": ("tests/load",)})
    max_parallel: int = 1
    max_queued: int = 8
    run_timeout_s: float = 1800.0
    audit_log: str | None = None
    manifests: str = "manifests"
    gate: Gate = field(default_factory=Gate)
    launcher: str = "local"  # or "kubernetes": each run a Job (controlplane/kubernetes.py)
    k8s_image: str | None = None
    k8s_namespace: str = "default"
    k8s_claim: str | None = None  # the PersistentVolumeClaim holding data_dir
    max_body_bytes: int = 64 * 1024
    heartbeat_s: float = 15.0

    @property
    def database(self) -> str:
        return os.path.join(self.data_dir, "history.sqlite3")

    @property
    def runs_dir(self) -> str:
        return os.path.join(self.data_dir, "runs")


def parse_tokens(text: str) -> dict[str, OperatorToken]:
    """AUTH_TOKENS_JSON: {"<token>": {"subject": ..., "scopes": [...]}} (the gateway's
    shape; tenant_id is accepted and ignored: the control plane has no tenants)."""
    raw = _json_object("AUTH_TOKENS_JSON", text, "map each token to {subject, scopes}")
    tokens = {}
    for number, (token, info) in enumerate(raw.items(), 1):
        scopes = info.get("scopes") if isinstance(info, dict) else None
        if not isinstance(scopes, list) or not all(s in SCOPES for s in scopes):
            # Never echo the token itself: name it by position.
            raise ControlPlaneSettingError(
                f"AUTH_TOKENS_JSON token #{number}: scopes must be a list of "
                                           f"{', '.join(SCOPES)}")
        tokens[str(token)] = OperatorToken(str(info.get("subject", f"token-{number}")),
                                           frozenset(scopes))
    return tokens


def from_environment(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from CP_* / AUTH_* variables, then keyword overrides (the CLI's)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    if "CP_HOST" in env:
        values["host"] = env["CP_HOST"]
    if "CP_PORT" in env:
        values["port"] = _int("CP_PORT", env["CP_PORT"], 0, 65535)
    if "CP_DATA_DIR" in env:
        values["data_dir"] = env["CP_DATA_DIR"]
    mode = env.get("AUTH_MODE", "none")
    if mode not in ("none", "static"):
        raise ControlPlaneSettingError(f"AUTH_MODE={mode!r}: valid: none, static")
    values["auth_mode"] = mode
    if mode == "static":
        values["tokens"] = parse_tokens(env.get("AUTH_TOKENS_JSON", "{}"))
    if "CP_TARGETS_JSON" in env:
        values["targets"] = parse_targets(env["CP_TARGETS_JSON"])
    if "CP_SUITES_JSON" in env:
        values["suites"] = parse_suites(env["CP_SUITES_JSON"])
    if "CP_AUDIT_LOG" in env:
        values["audit_log"] = env["CP_AUDIT_LOG"]
    if "CP_MAX_PARALLEL" in env:
        values["max_parallel"] = _int("CP_MAX_PARALLEL", env["CP_MAX_PARALLEL"], 1, 16)
    if "CP_MAX_QUEUED" in env:
        values["max_queued"] = _int("CP_MAX_QUEUED", env["CP_MAX_QUEUED"], 1, 1000)
    if "CP_RUN_TIMEOUT_S" in env:
        values["run_timeout_s"] = float(_int("CP_RUN_TIMEOUT_S", env["CP_RUN_TIMEOUT_S"],
                                             1, 86400))
    launcher = env.get("CP_LAUNCHER", "local")
    if launcher not in ("local", "kubernetes"):
        raise ControlPlaneSettingError(f"CP_LAUNCHER={launcher!r}: valid: local, kubernetes")
    values["launcher"] = launcher
    if launcher == "kubernetes":
        missing = [n for n in ("CP_K8S_IMAGE", "CP_K8S_CLAIM") if not env.get(n)]
        if missing:
            raise ControlPlaneSettingError(f"CP_LAUNCHER=kubernetes needs {' and '.join(missing)}")
        values.update(k8s_image=env["CP_K8S_IMAGE"], k8s_claim=env["CP_K8S_CLAIM"],
                      k8s_namespace=env.get("CP_K8S_NAMESPACE", "default"))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)


def parse_targets(text: str) -> dict[str, dict[str, str]]:
    """CP_TARGETS_JSON: {"<name>": {"url": "http(s)://..."} | {"target_file": path} | {}}."""
    raw = _json_object("CP_TARGETS_JSON", text, "name at least one target")
    targets = {}
    for name, spec in raw.items():
        if not isinstance(spec, dict) or not set(spec) <= {"url", "target_file"} or \
                len(spec) > 1:
            raise ControlPlaneSettingError(
                f"CP_TARGETS_JSON[{name!r}]: give one of url, target_file, or nothing (the "
                                           "embedded stack)")
        url = spec.get("url")
        if url is not None and not str(url).startswith(("http://", "https://")):
            raise ControlPlaneSettingError(f"CP_TARGETS_JSON[{name!r}].url must be http(s)://")
        targets[str(name)] = {k: str(v) for k, v in spec.items()}
    return targets


def parse_suites(text: str) -> dict[str, tuple[str, ...]]:
    """CP_SUITES_JSON: {"<name>": ["tests/e2e", ...]}: paths relative to the suite root,
    never absolute or climbing out of it."""
    raw = _json_object("CP_SUITES_JSON", text, "name at least one suite")
    suites = {}
    for name, paths in raw.items():
        if not isinstance(paths, list) or not paths or not all(
                isinstance(p, str) and p and not os.path.isabs(p)
                and ".." not in p.replace("\\", "/").split("/") for p in paths):
            raise ControlPlaneSettingError(
                f"CP_SUITES_JSON[{name!r}]: a list of paths relative to the suite root")
        suites[str(name)] = tuple(paths)
    return suites


def _json_object(name: str, text: str, must: str) -> dict[str, Any]:
    """The non-empty JSON object a variable holds, or a ControlPlaneSettingError saying
    what it must."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ControlPlaneSettingError(f"{name} is not JSON: {exc.msg}") from None
    if not isinstance(raw, dict) or not raw:
        raise ControlPlaneSettingError(f"{name} must {must}")
    return raw


def _int(name: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ControlPlaneSettingError(
            f"{name}={text!r}: a whole number from {low} to {high}") from None
    if not low <= value <= high:
        raise ControlPlaneSettingError(f"{name}={value}: a whole number from {low} to {high}")
    return value
