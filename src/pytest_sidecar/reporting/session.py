"""SessionReporter: the controller-only plugin that logs events and renders the reports."""

from __future__ import annotations

import html
import os
import re
import time
from typing import Any

import pytest

from ..fixtures.contracts import ADVISORY_PROPERTY, EVIDENCE_PROPERTY, FIGURE_PROPERTY
from ..marks import GROUPS, META_PROPERTY, skip_reason
from ..outcomes import parse_line
from ..target import TargetFileError, load_target_file
from .environment import environment
from .events import EventLog, read_events
from .model import build_report, build_results, root_causes
from .render import write_reports
from .rerun import rerun_commands

EVENT_LOG = "sidecar-events.jsonl"
_XDIST_BANNER = re.compile(r"^\[gw\d+\] \S+ -- Python ")


def reason_line(report: pytest.TestReport) -> str | None:
    """The one-line reason of a skip or failure."""
    if report.passed:
        return None
    if report.skipped:
        return skip_reason(report)
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else report.longreprtext
    # Skip xdist's "[gw0] linux -- Python ..." banner line.
    lines = [line for line in str(text).splitlines()
             if line.strip() and not _XDIST_BANNER.match(line)]
    return lines[0][:500] if lines else None


def worker_of(report: pytest.TestReport) -> str:
    node = getattr(report, "node", None)
    gateway = getattr(node, "gateway", None)
    return str(getattr(gateway, "id", "controller"))


class SessionReporter:
    """Registered on the controller only. The event log opens when the session starts,
    so `pytest --help` or a configure-only run never truncates the last run's log."""

    def __init__(self, config: pytest.Config, state: Any) -> None:
        self.config, self.state = config, state
        self.directory = state.config.report_dir
        self.log: EventLog | None = None
        self.started = time.time()
        self._collected_logged = False
        self.violations: list[str] = []
        self.paths: list[str] = []

    def _write(self, event: dict[str, Any]) -> None:
        if self.log is not None:
            self.log.write(event)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.config.getoption("collectonly", False):
            return  # nothing runs, so nothing is reported (the last report stays)
        self.started = time.time()
        # A file of this run's own while it runs (a concurrent run in the same directory
        # cannot truncate it); renamed to sidecar-events.jsonl once the reports are out.
        running = EVENT_LOG.replace(".jsonl", f".{self.state.run_id}.jsonl")
        self.log = EventLog(os.path.join(self.directory, running), self.state.redactor)
        self._write({
            "event": "session_start", "ts": _ts(self.started), "run_id": self.state.run_id,
            "strict": self.state.config.strict, "settings": self.state.config.display_rows(),
            "workers": _workers(self.config),
            "rerun": {"all": rerun_commands(self.config.invocation_params.args, [])["all"]},
        })

    def _collected(self, count: int) -> None:
        if not self._collected_logged:
            self._collected_logged = True
            self._write({"event": "collected", "count": count})

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if _workers(self.config) == 0:
            self._collected(len(session.items))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self._collected(len(ids))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        meta: Any = next((v for k, v in report.user_properties if k == META_PROPERTY), {})
        reason = reason_line(report)
        if reason and report.failed and "§" not in reason and meta.get("contract"):
            # Every failure names the clause it concerns: a bare assertion gets the
            # sections its spec certifies.
            reason = f"{reason} [certifies {', '.join(meta['contract'])}]"
        typed = parse_line(reason) if reason else None
        if reason and reason.startswith("STRICT: "):
            typed = parse_line(reason.removeprefix("STRICT: "))
        self._write({
            "event": "phase", "nodeid": report.nodeid, "when": report.when,
            "outcome": report.outcome, "worker": worker_of(report),
            "duration": report.duration, "reason": reason,
            "reason_code": typed.code if typed else None,
            "action": typed.action if typed else None,
            "contract": list(dict.fromkeys(
                [*meta.get("contract", []), *([typed.contract] if typed and typed.contract
                                              else [])])),
            "profile": meta.get("profile", "core"), "markers": meta.get("markers", []),
            "clauses": meta.get("clauses", []), "needs": meta.get("needs", []),
            "evidence": [v for k, v in report.user_properties if k == EVIDENCE_PROPERTY],
            "figures": [v for k, v in report.user_properties if k == FIGURE_PROPERTY],
            "advisories": [v for k, v in report.user_properties if k == ADVISORY_PROPERTY],
            "wasxfail": getattr(report, "wasxfail", None),
            "longrepr": report.longreprtext if report.failed else None,
        })

    def _target_info(self) -> dict[str, Any]:
        target = self.state.resolved_target
        if target is None and self.state.config.embedded:
            path = self.state.embedded_stack.target_file
            try:
                target = load_target_file(path) if os.path.exists(path) else None
            except TargetFileError:
                target = None
            if target is not None:
                self.state.redactor.add(target.secrets())
        if target is None:
            return {"url": self.state.config.url, "origin": "not resolved", "capabilities": []}
        origin = "embedded" if self.state.config.embedded else target.origin
        return {"url": target.url, "origin": origin,
                "capabilities": sorted(target.capabilities)}

    def _strict_violations(self, report: dict[str, Any]) -> list[str]:
        if not self.state.config.strict:
            return []
        # A skip that strict mode turned into a failure still executed nothing.
        executed = [r for r in report["results"] if r["outcome"] != "skipped"
                    and not (r["reason"] or "").startswith("STRICT: ")]
        violations = []
        if not executed:
            violations.append("strict: no spec executed")
        selected = selected_groups(self.config.getoption("markexpr", "") or "")
        for group in selected:
            if not any(group in r["markers"] for r in executed):
                violations.append(f"strict: marker group '{group}' was selected but "
                                  "executed nothing")
        return violations

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.log is None:
            return
        finished = time.time()
        self._write({"event": "session_finish", "ts": _ts(finished),
                        "duration_s": round(finished - self.started, 2),
                        "exit_status": int(exitstatus), "target": self._target_info(),
                        "environment": environment()})
        self.log.close()
        report = build_report(read_events(self.log.path))
        report["strict_violations"] = self._strict_violations(report)
        report["run_failures"] = unreachable(report)
        self.violations = report["strict_violations"] + report["run_failures"]
        if self.violations:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        report["run"]["exit_status"] = int(session.exitstatus)
        failed = [r["nodeid"] for r in report["results"] if r["outcome"] in ("failed", "error")]
        report["rerun"] = rerun_commands(self.config.invocation_params.args, failed)
        self.paths = write_reports(report, self.directory, self.state.redactor)
        os.replace(self.log.path, os.path.join(self.directory, EVENT_LOG))

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list[str], summary: list[str],
                                    postfix: list[str], session: pytest.Session) -> None:
        """pytest-html: the root causes, ranked, above its summary (built from the event
        log so far: every test has reported by the time pytest-html renders)."""
        if self.log is None:
            return
        # pytest-html may render before or after this plugin's sessionfinish, which moves
        # the log: read whichever name it has now.
        path = self.log.path if os.path.exists(self.log.path) else os.path.join(
            self.directory, EVENT_LOG)
        causes = root_causes(build_results(read_events(path)))
        if not causes:
            return
        items = "".join(
            f"<li><b>{cause['tests']} failing</b>: "
            f"{html.escape(self.state.redactor.text(cause['cause']))}</li>" for cause in causes)
        prefix.append(f"<h2>Root causes</h2><ol>{items}</ol>")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for violation in self.violations:
            terminalreporter.write_line(violation, red=True)
        if self.paths:
            terminalreporter.write_line("sidecar reports: " + ", ".join(self.paths))


def unreachable(report: dict[str, Any]) -> list[str]:
    """A run whose target never answered fails, whatever the skips say: one line."""
    skipped = [r for r in report["results"] if r["reason_code"] == "TARGET_UNREACHABLE"]
    if not skipped:
        return []
    reason = (skipped[0]["reason"] or "").removeprefix("TARGET_UNREACHABLE: ").split(";")[0]
    return [f"sidecar: the target never answered, so {len(skipped)} specs could not run: "
            f"{reason}"]


def selected_groups(expression: str) -> list[str]:
    """The marker groups a -m expression selects: named, and not right after `not`."""
    tokens = re.findall(r"\w+", expression)
    return [group for group in GROUPS
            if any(token == group and (i == 0 or tokens[i - 1] != "not")
                   for i, token in enumerate(tokens))]


def _ts(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _workers(config: pytest.Config) -> int:
    value = config.getoption("numprocesses", None) if config.pluginmanager.hasplugin(
        "xdist") else None
    return value if isinstance(value, int) else 0
