"""SidecarConfig: the settings resolved once, each value with where it came from.

Precedence is CLI > environment > ini > default. The resolution is a pure function of
the three raw sources, so it is tested without pytest.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import SidecarError
from .options import OPTIONS, Option, OptionValueError, default_of
from .options import shown as show_value


class SettingError(SidecarError, ValueError):
    """A bad setting: names the option, the value, its source and what is valid."""


@dataclass(frozen=True)
class SidecarConfig:
    """The effective pytest-sidecar settings (frozen; stored in `config.stash`). One
    field per row of the OPTIONS table, whose defaults they take (checked at import)."""

    url: str | None = default_of("url")
    target: str | None = default_of("target")
    capabilities: frozenset[str] | None = default_of("capabilities")
    strict: bool = default_of("strict")
    report_dir: str = default_of("report_dir")
    keep_runs: int = default_of("keep_runs")
    timeout: float = default_of("timeout")
    trace_deadline: float = default_of("trace_deadline")
    fuzz_examples: int = default_of("fuzz_examples")
    manifests: str | None = default_of("manifests")
    model: str | None = default_of("model")
    load_duration: float = default_of("load_duration")
    rate: float = default_of("rate")
    concurrency: int = default_of("concurrency")
    attach_rate: float = default_of("attach_rate")
    token_mix: float = default_of("token_mix")
    stream_share: float = default_of("stream_share")
    limits: tuple[tuple[str, float], ...] = default_of("limits")
    attainment: float = default_of("attainment")
    sweep_max: float = default_of("sweep_max")
    soak_duration: float = default_of("soak_duration")
    slo_sentence: float = default_of("slo_sentence")
    slo_token: float = default_of("slo_token")
    min_samples: int = default_of("min_samples")
    token_write: str | None = default_of("token_write")
    token_read: str | None = default_of("token_read")
    token_b_write: str | None = default_of("token_b_write")
    token_b_read: str | None = default_of("token_b_read")
    tenant_a: str | None = default_of("tenant_a")
    tenant_b: str | None = default_of("tenant_b")
    metrics_gateway: str | None = default_of("metrics_gateway")
    metrics_explainer: str | None = default_of("metrics_explainer")
    status_json: str | None = default_of("status_json")
    audit_log: str | None = default_of("audit_log")
    artifacts: str | None = default_of("artifacts")
    chaos_control: str | None = default_of("chaos_control")
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        """True when no target was named, so the reference stack is the target."""
        return self.url is None and self.target is None

    def explicit(self) -> dict[str, Any]:
        """The settings that were given (not defaults), by option name."""
        return {
            option.name: getattr(self, option.name)
            for option in OPTIONS
            if self.sources.get(option.name, "default") != "default"
        }

    def display_rows(self) -> list[tuple[str, str, str]]:
        """(option, shown value, source) for the report header; secrets are masked."""
        rows = []
        for option in OPTIONS:
            value = getattr(self, option.name)
            if value is None:
                continue
            shown = "***" if option.secret else show_value(value)
            rows.append((option.cli, shown, self.sources.get(option.name, "default")))
        return rows


_FIELDS = [f.name for f in fields(SidecarConfig) if f.name != "sources"]
if [option.name for option in OPTIONS] != _FIELDS:  # a row without a field, or the reverse
    raise ImportError("SidecarConfig's fields must be OPTIONS' names, in order: "
                      f"{_FIELDS} != {[option.name for option in OPTIONS]}")


def separated_path_values(args: Sequence[str], invocation_dir: str) -> list[str]:
    """Path options given as `--opt VALUE` whose VALUE is an existing path outside the
    invocation directory. pytest reads such a VALUE as a test path when it picks the
    rootdir (before plugin options are known), which changes the rootdir, the ini file
    and so the tests collected; `--opt=VALUE` is safe."""
    flags = {option.cli for option in OPTIONS if option.path}
    here = os.path.realpath(invocation_dir)
    found = []
    for flag, value in itertools.pairwise(args):
        if flag in flags and os.path.exists(value):
            where = os.path.realpath(os.path.join(invocation_dir, value))
            if os.path.commonpath([here, where]) != here:
                found.append(flag)
    return found


def _parse(option: Option, raw: str, source: str) -> Any:
    try:
        return option.parse(raw)
    except OptionValueError as exc:
        shown = "***" if option.secret else repr(raw)
        raise SettingError(
            f"{option.cli}: invalid value {shown} from {source}: {exc}; valid: {exc.valid}"
        ) from None


def resolve(
    cli: Mapping[str, str | bool | None],
    env: Mapping[str, str],
    ini: Mapping[str, str | None],
) -> SidecarConfig:
    """Resolve every option from CLI > env > ini > default into a SidecarConfig.

    `cli` and `ini` are keyed by option name and hold raw text (or True for a given
    CLI switch); `env` is the process environment.
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        cli_value = cli.get(option.name)
        if cli_value is not None and cli_value is not False:
            source = f"command line {option.cli}"
            raw = "true" if cli_value is True else str(cli_value)
        elif env.get(option.env, "") != "":
            source, raw = f"environment {option.env}", env[option.env]
        elif ini.get(option.name) not in (None, ""):
            source, raw = f"ini {option.ini}", str(ini[option.name])
        else:
            values[option.name] = option.default
            sources[option.name] = "default"
            continue
        values[option.name] = _parse(option, raw, source)
        sources[option.name] = source
    if values["url"] is not None and values["target"] is not None:
        raise SettingError(
            f"--sidecar-url ({sources['url']}) and --sidecar-target ({sources['target']}) "
            "are exclusive; valid: give one of them, or neither for the embedded stack"
        )
    return SidecarConfig(**values, sources=sources)
