"""pytest-sidecar's pytest plugin: wiring only. Hooks call into the plain modules."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Generator
from typing import Any

import pytest

from . import hookspecs
from .config import SettingError, resolve, separated_path_values
from .fixtures.chaos import chaos, chaos_factory
from .fixtures.contracts import evidence, hif_validator
from .fixtures.files import audit_log, status_store
from .fixtures.gateway import gateway, gateway_factory
from .fixtures.load import load_profile, load_runner, shared_load_run
from .fixtures.metrics import metrics, metrics_factory
from .fixtures.openai_sdk import openai_client, openai_factory
from .fixtures.platform import platform
from .fixtures.quiet import quiet_target
from .fixtures.stack import stack_factory
from .fixtures.target import sidecar_config, sidecar_target, tenants
from .fixtures.throttle import rate_limited
from .fixtures.traces import traces
from .marks import (
    CONTRACT_MARKER_DEPRECATED,
    Decision,
    ItemMarks,
    Skip,
    deprecated_contract_marks,
    evaluate_clauses,
    evaluate_needs,
    missing_evidence,
    opt_in_left_out,
    serial_order,
)
from .options import OPTIONS, help_of
from .outcomes import STRICT_ATTRIBUTE, fail_line, skip_line, strict_failure
from .reporting.reproduce import attach_reproduce, forget_sent_requests
from .reporting.session import SessionReporter
from .reporting.testreport import (
    add_html_extras,
    attach_meta,
    drop_fixture_reprs,
    redact_report,
)
from .rundirs import LATEST, run_dir
from .serial import MachineLock
from .state import STATE_KEY, WORKERINPUT_KEY, SidecarState, is_controller
from .target import Target, TargetFileError
from .vocabulary.contract_doc import CONTRACT_DOC
from .vocabulary.markers import MARKERS
from .vocabulary.reasons import FailReason, format_line

__all__ = ["audit_log", "chaos", "chaos_factory", "evidence", "gateway", "gateway_factory",
           "hif_validator", "load_profile", "load_runner", "metrics", "metrics_factory",
           "openai_client", "openai_factory", "platform", "quiet_target", "rate_limited",
           "shared_load_run", "sidecar_config",
           "sidecar_target", "stack_factory", "status_store", "tenants", "traces"]


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """The extension points of hookspecs.py: report sections, probes, fault backends."""
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sidecar", "pytest-sidecar (Async Sidecar conformance)")
    for option in OPTIONS:
        help_text = help_of(option)
        if option.flag:
            group.addoption(option.cli, action="store_true", default=None, help=help_text)
        else:
            group.addoption(option.cli, default=None, metavar=option.name.upper(),
                            help=help_text)
        parser.addini(option.ini, help=option.help, default=None)


@pytest.hookimpl(trylast=True)  # after pytest's tmpdir plugin has made its factory
def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    try:
        settings = resolve(
            {o.name: config.getoption(o.cli) for o in OPTIONS},
            os.environ,
            {o.name: config.getini(o.ini) for o in OPTIONS},
        )
    except SettingError as exc:
        raise pytest.UsageError(str(exc)) from None
    # On the controller only: by the time workers start, the controller may have made the
    # directory, and a worker's UsageError is a crash with a traceback, not one red line.
    separated = separated_path_values(config.invocation_params.args,
                                      str(config.invocation_params.dir)
                                      ) if is_controller(config) else []
    if separated:
        raise pytest.UsageError(
            f"{separated[0]}: write {separated[0]}=PATH (with '='): pytest reads a separate "
            "path as a test path when it picks the rootdir, before plugin options are known, "
            "which changes the rootdir, the ini file and the tests collected")
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    shared = workerinput.get(WORKERINPUT_KEY)
    if shared is None:
        run_id = uuid.uuid4().hex[:12]
        shared = {"dir": _shared_dir(config), "owner_pid": os.getpid(), "run_id": run_id,
                  "run_dir": str(run_dir(settings.report_dir, run_id, time.time()))}
    state = SidecarState(settings, shared["dir"], shared["owner_pid"], shared["run_id"],
                         shared["run_dir"], plugin_probes=lambda: _plugin_probes(config))
    try:
        state.load_explicit_target()  # a bad target file is a usage error, found early
    except TargetFileError as exc:
        raise pytest.UsageError(f"--sidecar-target: {exc}") from None
    config.stash[STATE_KEY] = state
    if is_controller(config):
        config.pluginmanager.register(SessionReporter(config, state), "sidecar-reporter")


def _plugin_probes(config: pytest.Config) -> dict[str, Any]:
    """The probes plugins add (pytest_sidecar_probes), later plugins winning."""
    merged: dict[str, Any] = {}
    for probes in reversed(config.hook.pytest_sidecar_probes()):  # pluggy: last-in first
        merged.update(probes)
    return merged


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
    """xdist: ship the controller's shared dir, pid, run id and run directory to each
    worker."""
    state: SidecarState = node.config.stash[STATE_KEY]
    node.workerinput[WORKERINPUT_KEY] = {"dir": state.shared_dir, "owner_pid": state.owner_pid,
                                         "run_id": state.run_id, "run_dir": state.run_dir}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Warn of the deprecated contract(...) marker; leave out the opt-in groups (the
    capacity sweep) unless -m names them or the command line names their file; run the
    specs that need the machine alone last (marks.serial_order)."""
    for item in deprecated_contract_marks(items):
        item.warn(pytest.PytestDeprecationWarning(CONTRACT_MARKER_DEPRECATED))
    left_out = opt_in_left_out(items, config.getoption("markexpr") or "",
                               [str(arg) for arg in config.invocation_params.args],
                               config.invocation_params.dir)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        dropped = set(left_out)
        items[:] = [item for item in items if item not in dropped]
    items[:] = serial_order(items, config.stash[STATE_KEY].config.embedded)


def pytest_report_header(config: pytest.Config) -> list[str]:
    state: SidecarState = config.stash[STATE_KEY]
    target = "embedded reference stack (started on first use)" if state.config.embedded else (
        state.config.target or state.config.url)
    lines = [f"sidecar: target {target}; reports -> {state.run_dir} "
             f"({os.path.join(state.config.report_dir, LATEST)} once it finishes)"]
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
    lines += leftover_lines(resolved)
    # Only what was given: the defaults are in `pytest --help` and in the report.
    lines += [f"sidecar:   {name} = {value}  ({source})"
              for name, value, source in state.config.display_rows() if source != "default"]
    return lines


def leftover_lines(target: Target | None) -> list[str]:
    """At session start: faults someone left in force on the target (a killed runner's,
    before its lease lapses, or one set by hand), so a red chaos spec is not a mystery."""
    if target is None or not target.chaos_control or not os.path.exists(target.chaos_control):
        return []
    from .chaos.backends import ControlFile
    from .chaos.exceptions import ChaosError

    try:
        found = ControlFile(target.chaos_control).leftovers()
    except ChaosError as exc:
        return [f"sidecar: WARNING the chaos control file is unreadable: {exc}"]
    return [f"sidecar: WARNING fault left in force on the target: {item['flag']} (set by "
            f"{item['owner']}; " + ("never lapses" if item["lapses_in_s"] is None else
                                    f"lapses in {item['lapses_in_s']:g}s") + ")"
            for item in found]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """Under xdist, load specs run alone on the machine (see serial.py)."""
    if is_controller(item.config):
        return (yield)  # no xdist: tests already run one at a time
    state: SidecarState = item.config.stash[STATE_KEY]
    lock = MachineLock(state.shared_dir)
    marks = ItemMarks.of(item)
    if marks.runs_alone(state.config.embedded):
        holding = lock.exclusive()
    elif marks.serial:  # on a stack of its own: beside ordinary specs, one at a time
        holding = lock.shared_one_own_stack()
    else:
        holding = lock.shared()
    with holding:
        return (yield)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Turn `needs` markers into typed skips (not declared) or failures (probe failed)."""
    forget_sent_requests()  # a failure reproduces its own last request, not the previous test's
    found = ItemMarks.of(item)
    decision = evaluate_clauses(found.clauses)
    if decision is None and found.needs:
        state: SidecarState = item.config.stash[STATE_KEY]
        target = state.reachable_target()  # a TARGET_UNREACHABLE skip when it is not
        decision = evaluate_needs(found.needs, target.capabilities, state.probe)
    if decision is not None:
        _act(decision)


def _act(decision: Decision) -> None:
    if isinstance(decision, Skip):
        skip_line(decision.line)
    fail_line(decision.line)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    state: SidecarState = item.config.stash[STATE_KEY]
    if report.when == "call" and report.passed and missing_evidence(item):
        report.outcome = "failed"
        report.longrepr = format_line(FailReason.NO_EVIDENCE.name,
                                      "the test used `evidence` but recorded none")
    strict = strict_failure(state.config.strict, report)
    if strict is not None:
        report.outcome = "failed"
        report.longrepr = strict.text
        # The skip's own typed line rides along, so the reporter never parses it back.
        setattr(report, STRICT_ATTRIBUTE, strict.skip_reason)
    if report.failed and state.config.embedded and state.embedded_stack.running():
        report.sections.append(("sidecar stack log (last 40 lines)",
                                state.embedded_stack.log_tail(40)))
    if report.failed and report.when in ("setup", "call"):
        attach_reproduce(report, state)
    meta = ItemMarks.of(item).meta()
    attach_meta(report, meta)
    if report.when == "call" and item.config.pluginmanager.hasplugin("html"):
        add_html_extras(report, meta, _contract_doc_href(item.config, state))
    drop_fixture_reprs(report)
    redact_report(report, state.redactor)
    return report


def _contract_doc_href(config: pytest.Config, state: SidecarState) -> str:
    """The run directory's contract.md as pytest-html's page reaches it."""
    page = os.path.dirname(os.path.abspath(str(config.getoption("htmlpath", "") or ".")))
    return os.path.relpath(os.path.join(state.run_dir, CONTRACT_DOC), page)


def pytest_sessionfinish(session: pytest.Session) -> None:
    state: SidecarState = session.config.stash[STATE_KEY]
    if is_controller(session.config) and state.config.embedded:
        state.embedded_stack.stop()

