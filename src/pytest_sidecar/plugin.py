"""pytest-sidecar's pytest plugin: wiring only. Hooks call into the plain modules."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Generator
from typing import Any

import pytest

from . import marks
from .clauses import unknown_clauses
from .config import SettingError, resolve, separated_path_values
from .fixtures.contracts import evidence, hif_validator
from .fixtures.files import audit_log, status_store
from .fixtures.gateway import gateway, gateway_factory, request_journal
from .fixtures.load import load_profile, load_runner
from .fixtures.metrics import metrics, metrics_factory
from .fixtures.platform import platform
from .fixtures.quiet import quiet_target
from .fixtures.stack import stack_factory
from .fixtures.target import sidecar_config, sidecar_target, tenants
from .fixtures.throttle import rate_limited
from .fixtures.traces import traces
from .options import OPTIONS
from .outcomes import FailReason, format_line
from .reporting.session import SessionReporter
from .serial import MachineLock
from .state import STATE_KEY, WORKERINPUT_KEY, SidecarState, is_controller
from .target import TargetFileError

__all__ = ["audit_log", "evidence", "gateway", "gateway_factory", "hif_validator",
           "load_profile", "load_runner", "metrics", "metrics_factory", "platform", "quiet_target",
           "rate_limited", "request_journal", "sidecar_config", "sidecar_target",
           "stack_factory", "status_store", "tenants", "traces"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sidecar", "pytest-sidecar (Async Sidecar conformance)")
    for option in OPTIONS:
        help_text = f"{option.help} [env {option.env}, ini {option.ini}]"
        if option.flag:
            group.addoption(option.cli, action="store_true", default=None, help=help_text)
        else:
            group.addoption(option.cli, default=None, metavar=option.name.upper(),
                            help=help_text)
        parser.addini(option.ini, help=option.help, default=None)


@pytest.hookimpl(trylast=True)  # after pytest's tmpdir plugin has made its factory
def pytest_configure(config: pytest.Config) -> None:
    for line in marks.MARKERS:
        config.addinivalue_line("markers", line)
    try:
        settings = resolve(
            {o.name: config.getoption(o.cli) for o in OPTIONS},
            os.environ,
            {o.name: config.getini(o.ini) for o in OPTIONS},
        )
    except SettingError as exc:
        raise pytest.UsageError(str(exc)) from None
    separated = separated_path_values(config.invocation_params.args,
                                      str(config.invocation_params.dir))
    if separated:
        raise pytest.UsageError(
            f"{separated[0]}: write {separated[0]}=PATH (with '='): pytest reads a separate "
            "path as a test path when it picks the rootdir, before plugin options are known, "
            "which changes the rootdir, the ini file and the tests collected")
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    shared = workerinput.get(WORKERINPUT_KEY)
    if shared is None:
        shared = {"dir": _shared_dir(config), "owner_pid": os.getpid(),
                  "run_id": uuid.uuid4().hex[:12]}
    state = SidecarState(settings, shared["dir"], shared["owner_pid"], shared["run_id"])
    try:
        state.load_explicit_target()  # a bad target file is a usage error, found early
    except TargetFileError as exc:
        raise pytest.UsageError(f"--sidecar-target: {exc}") from None
    config.stash[STATE_KEY] = state
    if is_controller(config):
        config.pluginmanager.register(SessionReporter(config, state), "sidecar-reporter")


def _shared_dir(config: pytest.Config) -> str:
    """A directory in the session's temp dir, shared with xdist workers."""
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is not None:
        return str(factory.mktemp("sidecar", numbered=True))
    # Only with -p no:tmpdir: a private temp dir, removed at session end.
    directory = tempfile.mkdtemp(prefix="pytest-sidecar-")
    config.add_cleanup(lambda: shutil.rmtree(directory, ignore_errors=True))
    return directory


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: ship the controller's shared dir, pid and run id to each worker."""
    state: SidecarState = node.config.stash[STATE_KEY]
    node.workerinput[WORKERINPUT_KEY] = {"dir": state.shared_dir, "owner_pid": state.owner_pid,
                                         "run_id": state.run_id}


def pytest_report_header(config: pytest.Config) -> list[str]:
    state: SidecarState = config.stash[STATE_KEY]
    target = "embedded reference stack (started on first use)" if state.config.embedded else (
        state.config.target or state.config.url)
    lines = [f"sidecar: target {target}; reports -> {state.config.report_dir}"]
    resolved = state.resolved_target
    if resolved is not None:
        lines.append(f"sidecar: capabilities {', '.join(sorted(resolved.declared)) or 'none'} "
                     f"({resolved.declared_by})")
        derived = resolved.derived - resolved.declared
        if derived:
            lines.append(f"sidecar:   and {', '.join(sorted(derived))} (from the files, URLs "
                         "and tenants the target gives)")
    else:
        lines.append("sidecar: capabilities: all that the reference stack implements "
                     "(its target file declares them)")
    lines += [f"sidecar:   {name} = {value}  ({source})"
              for name, value, source in state.config.display_rows()]
    return lines


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """Under xdist, load specs run alone on the machine (see serial.py)."""
    if is_controller(item.config):
        return (yield)  # no xdist: tests already run one at a time
    state: SidecarState = item.config.stash[STATE_KEY]
    lock = MachineLock(state.shared_dir)
    with lock.exclusive() if marks.runs_alone(item) else lock.shared():
        return (yield)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Turn `needs` markers into typed skips (not declared) or failures (probe failed)."""
    unknown = unknown_clauses(marks.asserted_clauses(item))
    if unknown:
        pytest.fail(f"clause({', '.join(map(repr, unknown))}): not in pytest_sidecar.clauses",
                    pytrace=False)
    names = marks.needed_capabilities(item)
    if names:
        marks.enforce_needs(item.config.stash[STATE_KEY], names)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    state: SidecarState = item.config.stash[STATE_KEY]
    if report.when == "call" and report.passed and marks.missing_evidence(item):
        report.outcome = "failed"
        report.longrepr = format_line(FailReason.NO_EVIDENCE.name,
                                      "the test used `evidence` but recorded none")
    if state.config.strict and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = "STRICT: " + marks.skip_reason(report)
    if report.failed and state.config.embedded and state.embedded_stack.running():
        report.sections.append(("sidecar stack log (last 40 lines)",
                                state.embedded_stack.log_tail(40)))
    marks.annotate(item, report)
    marks.redact_report(report, state.redactor)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    state: SidecarState = session.config.stash[STATE_KEY]
    if is_controller(session.config) and state.config.embedded:
        state.embedded_stack.stop()

