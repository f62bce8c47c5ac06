"""The same experiments for Kubernetes: Chaos Mesh `HTTPChaos` / `PodChaos` objects.

Each `inject_flag` action of an experiment's method becomes the Chaos Mesh object that
does the same to a cluster, where there is one:

| flag | Chaos Mesh |
|---|---|
| `upstream-errors {status}` | HTTPChaos on the upstream's pods: Response, replace code |
| `upstream-latency {ms}` | HTTPChaos on the upstream's pods: Request, delay |
| `rate-limit-spike` | HTTPChaos on the gateway's pods: Response 429 on /v1/* |
| `dependency-outage {explainer}` | PodChaos pod-failure on the explainer |
| `dependency-outage {upstream}` | PodChaos pod-failure on the upstream |

The application-level flags (fail-attribution, slow-sae, drop-s3, a status-store
outage) have no Chaos Mesh counterpart; they are listed as not exported, never dropped
silently. Chaos Mesh picks pods, not requests: a `percent` below 100 cannot be said
and is reported too. Every object is validated against the CRD schema before it is
written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..manifests import validation_errors

API = "chaos-mesh.org/v1alpha1"
CHAT_PATH = "/v1/chat/completions"


@dataclass
class Selectors:
    """Where the roles' pods are: label selectors per role, and the HTTP ports."""

    namespace: str
    gateway: dict[str, str] = field(default_factory=lambda: {
        "app.kubernetes.io/component": "gateway"})
    explainer: dict[str, str] = field(default_factory=lambda: {
        "app.kubernetes.io/component": "explainer"})
    upstream: dict[str, str] = field(default_factory=lambda: {
        "app.kubernetes.io/component": "upstream"})
    gateway_port: int = 8080
    upstream_port: int = 8000
    duration: str = "60s"


@dataclass
class Export:
    objects: list[dict[str, Any]] = field(default_factory=list)
    not_exported: list[str] = field(default_factory=list)


def export(experiment: Mapping[str, Any], where: Selectors) -> Export:
    """The experiment's fault actions as Chaos Mesh objects (raises ValueError when one
    would not validate: a bug here, never a broken file written)."""
    out = Export()
    for index, activity in enumerate(experiment.get("method") or []):
        provider = activity.get("provider") or {}
        if provider.get("func") != "inject_flag":
            continue
        arguments = provider.get("arguments") or {}
        flag, settings = arguments.get("flag"), dict(arguments.get("settings") or {})
        name = _name(experiment.get("title", "experiment"), index, str(flag))
        made = _object(str(flag), settings, name, where)
        if made is None:
            out.not_exported.append(f"{activity.get('name', flag)}: {flag} has no Chaos Mesh "
                                    "counterpart (an application-level fault)")
            continue
        if settings.get("percent", 100) < 100:
            out.not_exported.append(f"{activity.get('name', flag)}: percent "
                                    f"{settings['percent']} cannot be said (Chaos Mesh "
                                    "selects pods, not requests); exported at 100 %")
        errors = validation_errors(made)
        if errors:
            raise ValueError(f"{name}: the generated object does not validate: {errors[0]}")
        out.objects.append(made)
    return out


def _object(flag: str, settings: Mapping[str, Any], name: str, where: Selectors
            ) -> dict[str, Any] | None:
    if flag == "upstream-errors":
        return _http(name, where, where.upstream, where.upstream_port, "Response",
                     {"path": CHAT_PATH, "replace": {"code": int(settings.get("status", 500))}})
    if flag == "upstream-latency":
        return _http(name, where, where.upstream, where.upstream_port, "Request",
                     {"path": CHAT_PATH, "method": "POST",
                      "delay": f"{int(settings.get('ms', 1000))}ms"})
    if flag == "rate-limit-spike":
        return _http(name, where, where.gateway, where.gateway_port, "Response",
                     {"path": "/v1/*", "replace": {"code": 429}})
    if flag == "dependency-outage" and settings.get("dependency") in ("explainer", "upstream"):
        labels = where.explainer if settings["dependency"] == "explainer" else where.upstream
        return {"apiVersion": API, "kind": "PodChaos",
                "metadata": {"name": name, "namespace": where.namespace},
                "spec": {"action": "pod-failure", "mode": "all",
                         "selector": {"namespaces": [where.namespace],
                                      "labelSelectors": dict(labels)},
                         "duration": where.duration}}
    return None


def _http(name: str, where: Selectors, labels: Mapping[str, str], port: int, target: str,
          action: Mapping[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "HTTPChaos",
            "metadata": {"name": name, "namespace": where.namespace},
            "spec": {"mode": "all", "selector": {"namespaces": [where.namespace],
                                                 "labelSelectors": dict(labels)},
                     "target": target, "port": port, **action, "duration": where.duration}}


def _name(title: str, index: int, flag: str) -> str:
    """A DNS-1123 name: lowercase, dashes, at most 63 characters."""
    text = re.sub(r"[^a-z0-9]+", "-", f"{title}-{index}-{flag}".lower()).strip("-")
    return text[:63].rstrip("-") or "sidecar-chaos"


# What `sidecar-chaos run` fills in from the target file, read by Chaos Toolkit from the
# environment instead.
CHAOSTOOLKIT_CONFIGURATION = {
    "target_url": {"type": "env", "key": "SIDECAR_URL"},
    "chaos_control": {"type": "env", "key": "SIDECAR_CHAOS_CONTROL"},
}


def for_chaostoolkit(experiment: Mapping[str, Any]) -> dict[str, Any]:
    """The experiment as Chaos Toolkit's own `chaos run` takes it: its shape is already
    Chaos Toolkit's, so only what our runner supplies is added: a `version`, and a
    `configuration` entry, read from the environment, for each `${name}` used."""
    import json

    text = json.dumps(experiment)
    used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text))
    configuration = dict(experiment.get("configuration") or {})
    for name in sorted(used - set(configuration)):
        configuration[name] = CHAOSTOOLKIT_CONFIGURATION.get(
            name, {"type": "env", "key": f"SIDECAR_{name.upper()}"})
    out = {"version": str(experiment.get("version", "1.0.0")), **dict(experiment)}
    if configuration:
        out["configuration"] = configuration
    return out
