"""Experiments in Chaos Toolkit's shape, and its tolerance rules.

An experiment is a mapping: `title`, `description`, an optional
`steady-state-hypothesis` {title, probes (each with a `tolerance`)}, a `method` (a list
of actions and probes; it may be empty) and optional `rollbacks`. Activities have a
`type` (action or probe), a `name` and a `provider` of type `python`, `http` or
`process`; `${name}` in a string is replaced from the experiment's `configuration`.
Validation says what is wrong in one line, with the place.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .exceptions import ChaosError

PROVIDERS = ("python", "http", "process")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ExperimentError(ChaosError, ValueError):
    """The experiment is malformed; the message names the place."""


def load(path: str) -> dict[str, Any]:
    """An experiment from a JSON or YAML file."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ExperimentError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ExperimentError(f"{path}: not JSON or YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ExperimentError(f"{path}: an experiment is a mapping")
    validate(data)
    return data


def validate(experiment: Mapping[str, Any]) -> None:
    for key in ("title", "description"):
        if not isinstance(experiment.get(key), str) or not experiment[key]:
            raise ExperimentError(f"$.{key}: required, a non-empty string")
    if not isinstance(experiment.get("method"), list):
        raise ExperimentError("$.method: required, a list (it may be empty)")
    hypothesis = experiment.get("steady-state-hypothesis")
    if hypothesis is not None:
        if not isinstance(hypothesis, dict) or not isinstance(hypothesis.get("title"), str):
            raise ExperimentError("$.steady-state-hypothesis: needs a title")
        for index, probe in enumerate(hypothesis.get("probes") or []):
            where = f"$.steady-state-hypothesis.probes[{index}]"
            validate_activity(probe, where)
            if "tolerance" not in probe:
                raise ExperimentError(f"{where}: a hypothesis probe needs a tolerance")
    for section in ("method", "rollbacks"):
        for index, activity in enumerate(experiment.get(section) or []):
            validate_activity(activity, f"$.{section}[{index}]")


def validate_activity(activity: Any, where: str) -> None:
    if not isinstance(activity, dict):
        raise ExperimentError(f"{where}: an activity is a mapping")
    if activity.get("type") not in ("action", "probe"):
        raise ExperimentError(f"{where}.type: 'action' or 'probe'")
    if not isinstance(activity.get("name"), str) or not activity["name"]:
        raise ExperimentError(f"{where}.name: required")
    provider = activity.get("provider")
    if not isinstance(provider, dict) or provider.get("type") not in PROVIDERS:
        raise ExperimentError(f"{where}.provider.type: one of {', '.join(PROVIDERS)}")
    needed = {"python": ("module", "func"), "http": ("url",), "process": ("path",)}
    for key in needed[provider["type"]]:
        if not provider.get(key):
            raise ExperimentError(f"{where}.provider.{key}: required for a "
                                  f"{provider['type']} provider")


def resolve_configuration(configuration: Mapping[str, Any] | None,
                          env: Mapping[str, str]) -> dict[str, Any]:
    """Chaos Toolkit's configuration: a value is itself, or `{type: env, key, default?}`
    read from the environment (an unset key without a default is an error, as there)."""
    resolved: dict[str, Any] = {}
    for name, value in (configuration or {}).items():
        if isinstance(value, dict) and value.get("type") == "env":
            key = str(value.get("key", ""))
            if key in env:
                resolved[name] = env[key]
            elif "default" in value:
                resolved[name] = value["default"]
            else:
                raise ExperimentError(f"$.configuration.{name}: the environment variable "
                                      f"{key} is not set and has no default")
        else:
            resolved[name] = value
    return resolved


def validate_providers(experiment: Mapping[str, Any]) -> None:
    """What `chaos validate` checks beyond the shape: each python provider's module
    imports, its function exists, and the arguments given fit its signature. Refused
    before anything runs: a fault that could never be injected proves nothing."""
    import importlib
    import inspect

    sections = [("steady-state-hypothesis.probes",
                 (experiment.get("steady-state-hypothesis") or {}).get("probes") or []),
                ("method", experiment.get("method") or []),
                ("rollbacks", experiment.get("rollbacks") or [])]
    for section, activities in sections:
        for index, activity in enumerate(activities):
            provider = activity["provider"]
            if provider["type"] != "python":
                continue
            where = f"$.{section}[{index}].provider"
            try:
                module = importlib.import_module(provider["module"])
            except ImportError as exc:
                raise ExperimentError(f"{where}.module: cannot import "
                                      f"{provider['module']!r}: {exc}") from None
            function = getattr(module, provider["func"], None)
            if not callable(function):
                raise ExperimentError(f"{where}.func: {provider['module']} has no function "
                                      f"{provider['func']!r}")
            given = dict(provider.get("arguments") or {})
            try:
                parameters = inspect.signature(function).parameters
            except (TypeError, ValueError):
                continue  # a builtin without a signature: nothing to check
            injected = {"configuration", "secrets"}
            if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
                unknown = sorted(set(given) - set(parameters))
                if unknown:
                    raise ExperimentError(f"{where}.arguments: {provider['func']} takes no "
                                          f"{', '.join(unknown)}")
            missing = [name for name, p in parameters.items()
                       if p.default is p.empty and name not in given and name not in injected
                       and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            if missing:
                raise ExperimentError(f"{where}.arguments: {provider['func']} needs "
                                      f"{', '.join(missing)}")


def substitute(value: Any, configuration: Mapping[str, Any]) -> Any:
    """`${name}` replaced from the configuration, in every string of `value`."""
    if isinstance(value, str):
        whole = _VARIABLE.fullmatch(value)
        if whole and whole[1] in configuration:
            return configuration[whole[1]]  # keeps a number a number
        return _VARIABLE.sub(lambda m: str(configuration.get(m[1], m[0])), value)
    if isinstance(value, list):
        return [substitute(v, configuration) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, configuration) for k, v in value.items()}
    return value


def within_tolerance(tolerance: Any, value: Any) -> bool:
    """Chaos Toolkit's rules: a bool or string equals; an int equals (a provider result's
    `status` when it has one); a two-item list is an inclusive range, a longer one a set;
    `{"type": "range", "range": [lo, hi], "target"?}` and `{"type": "regex", "pattern",
    "target"?}` look into the value."""
    if isinstance(value, dict) and "status" in value and isinstance(tolerance, int | list) \
            and not isinstance(tolerance, bool):
        value = value["status"]
    if isinstance(tolerance, bool | str):
        return bool(value == tolerance)
    if isinstance(tolerance, int | float):
        return bool(value == tolerance)
    if isinstance(tolerance, list):
        if len(tolerance) == 2 and all(isinstance(t, int | float) for t in tolerance) \
                and isinstance(value, int | float):
            return bool(tolerance[0] <= value <= tolerance[1])
        return value in tolerance
    if isinstance(tolerance, dict):
        target = value.get(tolerance["target"]) if tolerance.get("target") and isinstance(
            value, dict) else value
        if tolerance.get("type") == "range":
            low, high = tolerance["range"]
            return isinstance(target, int | float) and low <= target <= high
        if tolerance.get("type") == "regex":
            return re.search(tolerance["pattern"], str(target)) is not None
    raise ExperimentError(f"unsupported tolerance {tolerance!r} (bool, number, string, list, "
                          "or a range or regex tolerance)")
