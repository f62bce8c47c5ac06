"""The one table of pytest-sidecar settings.

Every setting is declared once here, with its CLI flag, environment variable, ini key,
default and parser. `config.py` resolves them (CLI > env > ini > default); nothing else
reads pytest options. The command-line tools (sidecar-load, sidecar-capacity) and the load
engine's Profile take their defaults from here too (`default_of`), so a figure has one
home.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import SidecarError
from .vocabulary.capabilities import CAPABILITIES, did_you_mean
from .vocabulary.defaults import MIN_SAMPLES, SLO_S, STREAM_LIMITS


class OptionValueError(SidecarError, ValueError):
    """A setting's raw value could not be parsed; the message says what is valid."""

    def __init__(self, message: str, valid: str) -> None:
        super().__init__(message)
        self.valid = valid


Parser = Callable[[str], Any]


@dataclass(frozen=True)
class Option:
    """One setting: where it can come from and how its text becomes a value."""

    name: str
    help: str
    parse: Parser
    default: Any = None
    valid: str = "any text"
    secret: bool = False
    flag: bool = False  # a CLI switch without a value (store_true)
    # A file system path: given as `--opt VALUE` (not `--opt=VALUE`) pytest may take it
    # for a test path when it picks the rootdir (see config.separated_path_values).
    path: bool = False
    # Given explicitly, it replaces the target file's value of this Target attribute.
    overrides_target: bool = False

    @property
    def cli(self) -> str:
        return "--sidecar-" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "SIDECAR_" + self.name.upper()

    @property
    def ini(self) -> str:
        return "sidecar_" + self.name


def parse_url(text: str) -> str:
    """An absolute http(s) URL without a trailing slash."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise OptionValueError("not an absolute http(s) URL", "http(s)://host[:port][/path]")
    return text.strip().rstrip("/")


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise OptionValueError("not a boolean", "1/0, true/false, yes/no, on/off")


def parse_text(text: str) -> str:
    value = text.strip()
    if not value:
        raise OptionValueError("empty", "non-empty text")
    return value


def parse_path(text: str) -> str:
    value = text.strip()
    if not value:
        raise OptionValueError("empty", "a file system path")
    return os.path.expanduser(value)


def parse_existing_file(text: str) -> str:
    path = parse_path(text)
    if not os.path.isfile(path):
        raise OptionValueError("no such file", "the path of an existing YAML or JSON target file")
    return path


def parse_positive_float(text: str, valid: str = "a number > 0") -> float:
    try:
        value = float(text)
    except ValueError:
        raise OptionValueError("not a number", valid) from None
    if not value > 0:
        raise OptionValueError("not > 0", valid)
    return value


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*$")


def parse_seconds(text: str) -> float:
    """A duration > 0, in seconds: a number, or one with a unit as k6 writes them
    (`500ms`, `30s`, `2m`, `1h`)."""
    valid = "a duration > 0: seconds, or with a unit (500ms, 30s, 2m, 1h)"
    match = _DURATION.match(str(text))
    if match is None:
        raise OptionValueError("not a duration", valid)
    value = float(match[1]) * _UNITS[match[2] or "s"]
    if not value > 0:
        raise OptionValueError("not > 0", valid)
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise OptionValueError("not a whole number >= 1", "a whole number >= 1")
    return int(text)


def argparse_type(parse: Parser) -> Callable[[str], Any]:
    """One of the parsers above as an argparse `type=`, so the command-line tools
    (sidecar-load, sidecar-capacity) refuse a bad value with the same words."""
    import argparse

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except OptionValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r} is {exc}; valid: {exc.valid}") from None

    return convert


LIMITS_VALID = f"{'|'.join(STREAM_LIMITS)}=<ms>, comma-separated: ttft=500,e2e=2000"


def parse_limits(text: str) -> tuple[tuple[str, float], ...]:
    """Per-request limits of streamed chats in ms, `ttft=500,e2e=2000` (each metric once):
    what goodput and the capacity sweep judge a streamed request by."""
    limits: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name.strip() not in STREAM_LIMITS or name.strip() in limits:
            raise OptionValueError(f"{name.strip() or part!r} is not a metric given once",
                                   LIMITS_VALID)
        limits[name.strip()] = parse_positive_float(value, LIMITS_VALID)
    if not limits:
        raise OptionValueError("empty", LIMITS_VALID)
    return tuple(limits.items())


def parse_share(text: str) -> float:
    """A share of requests, 0..1."""
    try:
        value = float(text)
    except ValueError:
        raise OptionValueError("not a number", "a number from 0 to 1") from None
    if not 0.0 <= value <= 1.0:
        raise OptionValueError("outside 0..1", "a number from 0 to 1")
    return value


def parse_capabilities(text: str) -> frozenset[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in CAPABILITIES]
    if unknown:
        raise OptionValueError(
            f"unknown capability {', '.join(unknown)}{did_you_mean(unknown)}",
            "a comma list of " + ", ".join(CAPABILITIES))
    return frozenset(names)


OPTIONS: tuple[Option, ...] = (
    Option("url", "Base URL of the Sidecar under test. Without it (and without "
           "--sidecar-target) the embedded reference stack is started.", parse_url,
           valid="http(s)://host[:port][/path]"),
    Option("target", "Target file (YAML or JSON) describing the deployment under test.",
           parse_existing_file, valid="the path of an existing YAML or JSON target file",
           path=True),
    Option("capabilities", "Comma list replacing the capabilities the target declares.",
           parse_capabilities, valid="a comma list of capability names"),
    Option("strict", "Release mode: every skip, and every selected marker group that ran "
           "nothing, fails the run.", parse_bool, default=False, flag=True,
           valid="1/0, true/false, yes/no, on/off"),
    Option("report_dir", "Report root: each run writes REPORT_DIR/runs/<UTC time>-<run id>/ "
           "(sidecar-report.json/.md, the event log, load/, figures/) and REPORT_DIR/latest "
           "points at the newest.", parse_path, default="reports", valid="a file system path",
           path=True),
    Option("keep_runs", "How many run directories REPORT_DIR/runs keeps; older ones are "
           "removed when a run finishes.", positive_int, default=20,
           valid="a whole number >= 1"),
    Option("timeout", "Timeout of one HTTP request to the target, seconds.",
           parse_seconds, default=10.0, valid="a duration > 0 (30, 30s, 2m)"),
    Option("trace_deadline", "How long a spec waits for a trace to reach a terminal state, "
           "seconds.", parse_seconds, default=30.0, valid="a duration > 0 (30, 30s, 2m)"),
    Option("fuzz_examples", "Examples Schemathesis generates per API operation in the "
           "contract fuzz spec.", positive_int, default=15,
           valid="a whole number >= 1"),
    Option("manifests", "Directory of the target's deployment manifests (helm/hypergraph, "
           "argocd/, karpenter/) the platform specs check, relative to the rootdir. Replaces "
           "the target file's `manifests`; the embedded stack uses the rootdir's manifests/. "
           "Any other target without one leaves the platform profile untested.", parse_path,
           valid="a directory path", path=True, overrides_target=True),
    Option("model", "The model named in the chats the suite sends (replaces the target "
           "file's `model`; default sidecar-fake-1, which the embedded stack answers).",
           parse_text, valid="non-empty text", overrides_target=True),
    # Load and SLO specs (tests/load). The defaults keep `pytest -m slo` within a minute on
    # two cores; they attach and mix in more token work than a typical production mix
    # (0.3 attached, 0.1 token) so a short run still completes enough token traces for a
    # verdict.
    Option("load_duration", "Seconds of offered load per load spec.", parse_seconds,
           default=10.0, valid="a duration > 0 (30, 30s, 2m)"),
    Option("rate", "Offered chat requests/s of a load spec (open model).",
           parse_positive_float, default=40.0, valid="a number > 0 (requests/s)"),
    Option("concurrency", "In-flight cap of the load generator; requests past it are dropped "
           "and counted.", positive_int, default=300,
           valid="a whole number >= 1"),
    Option("attach_rate", "Share of load-spec chats sent with x-explain-mode: hypergraph.",
           parse_share, default=0.5, valid="a number from 0 to 1"),
    Option("token_mix", "Share of explained load-spec chats at token granularity.",
           parse_share, default=0.3, valid="a number from 0 to 1"),
    Option("stream_share", "Share of load-spec chats sent with stream: true (their time to "
           "first token is recorded).", parse_share, default=0.2, valid="a number from 0 to 1"),
    Option("limits", "Per-request limits of a streamed chat, ms: the load specs count the "
           "streams within all of them (goodput) and the capacity sweep's peak is the highest "
           "rate at which --sidecar-attainment of streams meet them.", parse_limits,
           default=(("ttft", 1000.0), ("tpot", 100.0)), valid=LIMITS_VALID),
    Option("attainment", "Share of streamed chats that must meet every limit for a sweep "
           "step to hold (DistServe's peak takes 0.9).", parse_share, default=0.9,
           valid="a number from 0 to 1"),
    Option("sweep_max", "The highest rate the capacity sweep offers, requests/s; it rises "
           "from --sidecar-rate in steps of --sidecar-rate.", parse_positive_float,
           default=400.0, valid="a number > 0 (requests/s)"),
    Option("soak_duration", "Seconds of open-model load under upstream errors in the chaos "
           "soak spec (600 for a ten-minute soak).", parse_seconds, default=6.0,
           valid="a duration > 0 (30, 30s, 2m)"),
    Option("slo_sentence", "SLO: p95 explanation latency at sentence granularity, seconds.",
           parse_seconds, default=SLO_S["sentence"], valid="a duration > 0 (30, 30s, 2m)"),
    Option("slo_token", "SLO: p95 explanation latency at token granularity, seconds.",
           parse_seconds, default=SLO_S["token"], valid="a duration > 0 (30, 30s, 2m)"),
    Option("min_samples", "Completed traces an SLO verdict needs per granularity; fewer is "
           "INSUFFICIENT_DATA.", positive_int, default=MIN_SAMPLES,
           valid="a whole number >= 1"),
    Option("token_write", "Tenant A token with traces:read and traces:write.", parse_text,
           secret=True, valid="non-empty text"),
    Option("token_read", "Tenant A token with traces:read only.", parse_text, secret=True,
           valid="non-empty text"),
    Option("token_b_write", "Tenant B token with traces:read and traces:write.", parse_text,
           secret=True, valid="non-empty text"),
    Option("token_b_read", "Tenant B token with traces:read only.", parse_text, secret=True,
           valid="non-empty text"),
    Option("tenant_a", "Tenant id of tenant A.", parse_text),
    Option("tenant_b", "Tenant id of tenant B.", parse_text),
    Option("metrics_gateway", "URL of the gateway's /metrics.", parse_url,
           valid="http(s)://host[:port][/path]", overrides_target=True),
    Option("metrics_explainer", "URL of the explainer's /metrics.", parse_url,
           valid="http(s)://host[:port][/path]", overrides_target=True),
    Option("status_json", "Path of the target's JSON status store (co-located targets).",
           parse_path, valid="a file system path", path=True, overrides_target=True),
    Option("audit_log", "Path of the target's audit log (JSON Lines).", parse_path,
           valid="a file system path", path=True, overrides_target=True),
    Option("artifacts", "Artifact root of the target (file:// URL or path).", parse_text,
           path=True, overrides_target=True),
    Option("chaos_control", "Path of the target's chaos control file.", parse_path,
           valid="a file system path", path=True, overrides_target=True),
)

OPTIONS_BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}


def help_of(option: Option) -> str:
    """The option's --help text: what it does, its default, where else it can be given,
    and, for a token, that it is a secret better kept out of command lines."""
    default = "" if option.default is None else f"default {shown(option.default)}; "
    secret = "secret, never shown: prefer the environment variable; " if option.secret else ""
    return f"{option.help} [{secret}{default}env {option.env}, ini {option.ini}]"


def shown(value: Any) -> str:
    """A setting's value as it would be typed: a capability set or limits comma-joined."""
    if isinstance(value, frozenset):
        return ",".join(sorted(value))
    if isinstance(value, tuple) and all(isinstance(pair, tuple) for pair in value):
        return ",".join(f"{name}={number:g}" for name, number in value)
    return str(value)


def default_of(name: str) -> Any:
    """The default of one setting: the home of every figure the CLIs and the load
    engine's Profile share with the plugin."""
    return OPTIONS_BY_NAME[name].default
