"""What a run request may ask for, the pytest command it becomes, and the launchers.

A request names things the control plane was configured with (a target, a suite) and
a few knobs; it never carries a path, a URL or an option of its own. The command is an
argument list (never a shell), and the run's environment is the control plane's minus
its own secrets (AUTH_TOKENS_JSON would otherwise become the embedded stack's tokens).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Protocol

from .exceptions import ControlPlaneError
from .settings import Settings

EXPRESSION = re.compile(r"^[A-Za-z0-9_ ()\[\]\.:,/-]{0,200}$")
LOAD_KNOBS = {"duration": ("--sidecar-load-duration", 1, 600),
              "rate": ("--sidecar-rate", 0.1, 2000),
              "concurrency": ("--sidecar-concurrency", 1, 5000)}
REQUEST_KEYS = {"target", "suite", "markers", "keyword", "strict", "load"}
PRIVATE_ENV = ("AUTH_MODE", "AUTH_TOKENS_JSON")  # and every CP_* variable
CANCEL_GRACE_S = 10.0


class RequestError(ControlPlaneError, ValueError):
    """A run request the control plane refuses; `field` names the part at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class RunRequest:
    target: str
    suite: str
    markers: str | None = None
    keyword: str | None = None
    strict: bool = False
    load: Mapping[str, float] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "suite": self.suite, "markers": self.markers,
                "keyword": self.keyword, "strict": self.strict,
                "load": dict(self.load) if self.load else None}


def parse_request(body: Any, settings: Settings) -> RunRequest:
    """A RunRequest from a JSON body, checked against what is configured."""
    if not isinstance(body, dict):
        raise RequestError("(body)", "the body must be a JSON object")
    unknown = sorted(set(body) - REQUEST_KEYS)
    if unknown:
        raise RequestError(unknown[0], f"unknown field(s) {', '.join(unknown)}; valid: "
                           f"{', '.join(sorted(REQUEST_KEYS))}")
    target = body.get("target", next(iter(settings.targets)))
    if target not in settings.targets:
        raise RequestError("target", f"unknown target {target!r}; configured: "
                           f"{', '.join(settings.targets)}")
    suite = body.get("suite", next(iter(settings.suites)))
    if suite not in settings.suites:
        raise RequestError("suite", f"unknown suite {suite!r}; configured: "
                           f"{', '.join(settings.suites)}")
    expressions = {}
    for key in ("markers", "keyword"):
        value = body.get(key)
        if value in (None, ""):
            continue
        if not isinstance(value, str) or not EXPRESSION.match(value) or \
                value.lstrip().startswith("-"):
            raise RequestError(key, f"{key} must be a pytest expression of letters, digits, "
                               "spaces, _ ( ) [ ] . : , / - (at most 200 characters)")
        expressions[key] = value
    strict = body.get("strict", False)
    if not isinstance(strict, bool):
        raise RequestError("strict", "strict must be true or false")
    return RunRequest(target, suite, strict=strict, load=_load(body.get("load")),
                      **expressions)


def _load(value: Any) -> dict[str, float] | None:
    if value in (None, {}):
        return None
    if not isinstance(value, dict) or not set(value) <= set(LOAD_KNOBS):
        raise RequestError("load", f"load takes {', '.join(LOAD_KNOBS)}")
    knobs = {}
    for key, number in value.items():
        _, low, high = LOAD_KNOBS[key]
        if isinstance(number, bool) or not isinstance(number, int | float) or \
                not low <= number <= high:
            raise RequestError(f"load.{key}", f"load.{key} must be a number from {low} "
                               f"to {high}")
        knobs[key] = float(number)
    return knobs


def pytest_argv(request: RunRequest, settings: Settings, report_dir: str) -> list[str]:
    """The run's command: this interpreter's pytest, the suite's paths, the plugin's
    options for the target and knobs, and the run's own report directory."""
    argv = [sys.executable, "-m", "pytest", *settings.suites[request.suite],
            "-p", "no:cacheprovider", f"--sidecar-report-dir={report_dir}",
            f"--html={os.path.join(report_dir, 'report.html')}", "--self-contained-html"]
    target = settings.targets[request.target]
    if "url" in target:
        argv.append(f"--sidecar-url={target['url']}")
    elif "target_file" in target:
        argv.append(f"--sidecar-target={target['target_file']}")
    if request.markers:
        argv += ["-m", request.markers]
    if request.keyword:
        argv += ["-k", request.keyword]
    if request.strict:
        argv.append("--sidecar-strict")
    for key, value in (request.load or {}).items():
        argv.append(f"{LOAD_KNOBS[key][0]}={value:g}")
    return argv


def run_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The control plane's environment without its own settings and secrets; pytest's
    output unbuffered, so the run's log can be followed as it is written."""
    env = os.environ if env is None else env
    return {**{k: v for k, v in env.items() if k not in PRIVATE_ENV and not k.startswith("CP_")},
            "PYTHONUNBUFFERED": "1"}


class Launched(Protocol):
    """A started run, as its launcher sees it."""

    def poll(self) -> int | None:
        """The exit code once it ended, else None."""

    def cancel(self) -> None:
        """Stop it: politely, then for sure (bounded)."""


class Launcher(Protocol):
    def start(self, argv: Sequence[str], cwd: str, log_path: str) -> Launched:
        """Start `argv` in `cwd`, its output to `log_path`."""


class LocalProcess:
    """A run as a local process group: cancel reaches pytest, its xdist workers and the
    embedded stack it started."""

    def __init__(self, argv: Sequence[str], cwd: str, log_path: str) -> None:
        self._log: IO[bytes] = open(log_path, "wb")  # noqa: SIM115 - closed in poll()
        self.process = subprocess.Popen(list(argv), cwd=cwd, env=run_environment(),
                                        stdin=subprocess.DEVNULL, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def poll(self) -> int | None:
        code = self.process.poll()
        if code is not None and not self._log.closed:
            self._log.close()
        return code

    def cancel(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(CANCEL_GRACE_S)
                return
            except subprocess.TimeoutExpired:
                continue


class LocalLauncher:
    """Runs pytest as a subprocess of the control plane."""

    def start(self, argv: Sequence[str], cwd: str, log_path: str) -> Launched:
        return LocalProcess(argv, cwd, log_path)
