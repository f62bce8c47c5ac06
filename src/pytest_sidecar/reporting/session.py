"""SessionReporter: the controller-only plugin that logs events and renders the reports.

The event log is the one writer: every phase and the session's finish go through it,
and its redactor (reporting/events.py) is the edge where secrets stop. The report is
then a pure function of the log (model.build_report).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..atomic import write_atomic
from ..outcomes import STRICT_ATTRIBUTE, skip_reason, strict_violations
from ..rundirs import LATEST, discard, point_latest, prune
from ..vocabulary.contract_doc import CONTRACT_DOC
from ..vocabulary.keys import (
    ADVISORY_PROPERTY,
    EVENT_LOG,
    EVIDENCE_PROPERTY,
    FIGURE_PROPERTY,
    REPRODUCE_PROPERTY,
    SIDECAR_PROPERTIES,
)
from ..vocabulary.reasons import parse_line
from .environment import environment
from .events import EventLog, read_events
from .html import page_title, summary_html, verdict_first
from .llm import llm_html
from .model import (
    build_report,
    build_results,
    conformance,
    coverage,
    next_actions,
    root_causes,
)
from .progress import PROGRESS_DIR, ProgressWatcher
from .render import write_reports
from .rerun import rerun_commands
from .testreport import CRASH_ATTRIBUTE, meta_of, properties
from .types import PhaseEvent, Report, Result, TargetInfo
from .verdict import build_verdict, verdict_lines

if TYPE_CHECKING:
    from ..state import SidecarState

_XDIST_BANNER = re.compile(r"^\[gw\d+\] \S+ -- Python ")


def reason_line(report: pytest.TestReport) -> str | None:
    """The one-line reason of a skip or failure."""
    if report.passed:
        return None
    if report.skipped:
        return skip_reason(report)
    crash = getattr(report.longrepr, "reprcrash", None)
    text = getattr(report, CRASH_ATTRIBUTE, None) or (
        crash.message if crash is not None else report.longreprtext)
    # Skip xdist's "[gw0] linux -- Python ..." banner line.
    lines = [line for line in str(text).splitlines()
             if line.strip() and not _XDIST_BANNER.match(line)]
    return without_assertion_class(lines[0])[:500] if lines else None


def without_assertion_class(line: str) -> str:
    """An assertion with a message says what is wrong in its own words: the class name
    before them is noise. A bare `assert x == y` keeps it (nothing else says it failed),
    as does any other exception, whose class is part of what happened."""
    rest = line.removeprefix("AssertionError: ")
    return rest if rest != line and not rest.startswith("assert ") else line


def worker_of(report: pytest.TestReport) -> str:
    node = getattr(report, "node", None)
    gateway = getattr(node, "gateway", None)
    return str(getattr(gateway, "id", "controller"))


def phase_event(report: pytest.TestReport) -> PhaseEvent:
    """The event log's line for one TestReport."""
    meta = meta_of(report)
    reason = reason_line(report)
    if reason and report.failed and "§" not in reason and meta.get("contract"):
        # Every failure names the clause it concerns: a bare assertion gets the
        # sections its spec certifies.
        reason = f"{reason} [certifies {', '.join(meta['contract'])}]"
    strict_skip: str | None = getattr(report, STRICT_ATTRIBUTE, None)
    typed = parse_line(strict_skip or reason or "") if (strict_skip or reason) else None
    return {
        "event": "phase", "nodeid": report.nodeid, "when": str(report.when),
        "outcome": report.outcome, "worker": worker_of(report),
        "rerun": int(getattr(report, "rerun", 0) or 0),
        "duration": report.duration, "reason": reason,
        "reason_code": typed.code if typed else None,
        "action": typed.action if typed else None,
        "contract": list(dict.fromkeys(
            [*meta.get("contract", []), *([typed.contract] if typed and typed.contract
                                          else [])])),
        "profile": meta.get("profile", "core"), "markers": meta.get("markers", []),
        "clauses": meta.get("clauses", []), "needs": meta.get("needs", []),
        "evidence": properties(report, EVIDENCE_PROPERTY),
        "figures": properties(report, FIGURE_PROPERTY),
        "advisories": properties(report, ADVISORY_PROPERTY),
        "wasxfail": getattr(report, "wasxfail", None),
        "longrepr": report.longreprtext if report.failed else None,
        "reproduce": next(iter(properties(report, REPRODUCE_PROPERTY)), None),
        "strict": strict_skip is not None,
    }


class SessionReporter:
    """Registered on the controller only. The event log opens when the session starts,
    so `pytest --help` or a configure-only run never truncates the last run's log."""

    def __init__(self, config: pytest.Config, state: SidecarState) -> None:
        self.config, self.state = config, state
        self.root, self.directory = state.config.report_dir, state.run_dir
        self.log: EventLog | None = None
        self.started = time.time()
        self._collected_logged = False
        self.violations: list[str] = []
        self.paths: list[str] = []
        self.report: Report | None = None
        self.kept = False  # nothing ran: the last run's reports were left alone
        self.progress: ProgressWatcher | None = None
        self._html_report: Any = None  # pytest-html's report data, titled at the end

    def _write(self, event: dict[str, Any] | PhaseEvent) -> None:
        if self.log is not None:
            self.log.write(dict(event))

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.config.getoption("collectonly", False):
            return  # nothing runs, so nothing is reported (the last report stays)
        self.started = time.time()
        # The run's own directory (rundirs.py): no other run writes into it.
        self.log = EventLog(os.path.join(self.directory, EVENT_LOG), self.state.redactor)
        self._write({
            "event": "session_start", "ts": _ts(self.started), "run_id": self.state.run_id,
            "strict": self.state.config.strict, "settings": self.state.config.display_rows(),
            "workers": _workers(self.config),
            "rerun": {"all": rerun_commands(self.config.invocation_params.args, [])["all"]},
        })
        self._metadata()
        self._watch_progress()

    def _watch_progress(self) -> None:
        """Under xdist, print the workers' load progress lines (reporting/progress.py)."""
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if _workers(self.config) and terminal is not None and self.config.get_verbosity() >= -1:
            def write_line(line: str) -> None:
                # xdist's progress dots do not end their line: start a fresh one.
                if getattr(getattr(terminal, "_tw", None), "width_of_current_line", 0):
                    terminal.write("\n")
                terminal.write_line(line)

            self.progress = ProgressWatcher(Path(self.state.shared_dir) / PROGRESS_DIR,
                                            write_line)
            self.progress.start()

    def _metadata(self) -> None:
        """pytest-html's environment table (via pytest-metadata, read at its trylast
        sessionstart): the run id, the target and what it declares."""
        try:
            from pytest_metadata.plugin import metadata_key  # type: ignore[import-untyped]
        except ImportError:
            return
        metadata = self.config.stash.get(metadata_key, None)
        if metadata is None:
            return
        target = self.state.resolved_target
        metadata["Sidecar run id"] = self.state.run_id
        metadata["Sidecar target"] = (target.url if target else
                                      self.state.config.url or "the embedded reference stack")
        metadata["Sidecar capabilities"] = (", ".join(sorted(target.capabilities)) if target
                                            else "all that the reference stack implements")
        metadata["Sidecar reports"] = self.directory

    def _collected(self, ids: list[str]) -> None:
        if not self._collected_logged:
            self._collected_logged = True
            # The ids in collection order: the report lists results in it.
            self._write({"event": "collected", "count": len(ids), "ids": ids})

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if _workers(self.config) == 0:
            self._collected([item.nodeid for item in session.items])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self._collected(list(ids))

    @pytest.hookimpl(tryfirst=True)  # before junitxml, which writes str() of each value
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._write(phase_event(report))
        # JUnit XML and any other reader of the properties get JSON, not a Python repr.
        report.user_properties = [
            (key, json.dumps(value, default=str) if key in SIDECAR_PROPERTIES else value)
            for key, value in report.user_properties]

    def _target_info(self) -> TargetInfo:
        target = self.state.final_target()
        if target is None:
            return {"url": self.state.config.url, "origin": "not resolved", "capabilities": []}
        origin = "embedded" if self.state.config.embedded else target.origin
        return {"url": target.url, "origin": origin,
                "capabilities": sorted(target.capabilities),
                "implementation": dict(target.implementation)}

    def _verdicts(self, session: pytest.Session, events: list[dict[str, Any]]
                  ) -> dict[str, Any]:
        """What the run as a whole comes to: strict-mode violations, run failures and
        the re-run commands; a violation fails the session."""
        results = build_results(events)
        strict_failed = {e["nodeid"] for e in events
                         if e.get("event") == "phase" and e.get("strict")}
        target = self.state.final_target()
        violations = strict_violations(self.state.config.strict, results,
                                       self.config.getoption("markexpr", "") or "",
                                       strict_failed,
                                       target.capabilities if target else ())
        failures = unreachable(results)
        self.violations = violations + failures
        if self.violations:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        failed = [r["nodeid"] for r in results if r["outcome"] in ("failed", "error")]
        return {"strict_violations": violations, "run_failures": failures,
                "rerun": rerun_commands(self.config.invocation_params.args, failed)}

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.progress is not None:
            self.progress.stop()
        if self.log is None:
            return
        finished = time.time()
        events = read_events(self.log.path)
        verdicts = self._verdicts(session, events)
        if not self.violations and _nothing_ran(events, session.exitstatus):
            # `-m slow` that selects nothing, or a usage error: no report, and no
            # directory; `latest` keeps pointing at the last run that ran something.
            self.log.close()
            discard(self.directory)
            self.kept = True
            return
        self._write({"event": "session_finish", "ts": _ts(finished),
                     "duration_s": round(finished - self.started, 2),
                     "exit_status": int(session.exitstatus), "target": self._target_info(),
                     "environment": environment(), **verdicts})
        self.log.close()
        report = self.report = build_report(read_events(self.log.path))
        extra = [lines for lines in self.config.hook.pytest_sidecar_report_sections(
            report=report) if lines]
        self.paths = write_reports(report, self.directory, extra)
        point_latest(self.root, self.directory)
        prune(self.root, self.state.config.keep_runs, self.directory)

    def pytest_unconfigure(self) -> None:
        """Keep a copy of the HTML report in the run's directory (its own writer puts it
        where the user asked, at its sessionfinish), so a run's directory holds all of
        that run and nothing of another. (junit.xml there is ours, one case per spec.)"""
        if self.report is None:
            return
        html_path = getattr(self.config.option, "htmlpath", None)
        copy = os.path.join(self.directory, "report.html")
        if html_path and os.path.isfile(html_path) and \
                os.path.getmtime(html_path) >= self.started and not os.path.exists(copy):
            with open(html_path, "rb") as handle:
                write_atomic(html_path, verdict_first(handle.read()))
            write_atomic(copy, _beside_contract(html_path, self.directory))
        assets = os.path.join(os.path.dirname(str(html_path or "")), "assets")
        if html_path and os.path.isdir(assets):
            # Not self-contained: the page links its stylesheet as assets/style.css.
            shutil.copytree(assets, os.path.join(self.directory, "assets"),
                            dirs_exist_ok=True)

    def _html_view(self) -> tuple[dict[str, Any], Any, list[Any]] | None:
        """(target, verdict, results) from the event log so far: every test has reported
        by the time pytest-html renders."""
        if self.log is None or self.kept:
            return None
        results = build_results(read_events(self.log.path))
        target = self._target_info()
        view = conformance(results, target.get("capabilities", []))
        return dict(target), (build_verdict(target, view, results), view), results

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_report_title(self, report: Any) -> None:
        """pytest-html asks for the title at the session's start, before any verdict:
        keep its report, to title it `pytest-sidecar — <target> — <verdict>` at the end."""
        self._html_report = report

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list[str], summary: list[str],
                                    postfix: list[str], session: pytest.Session) -> None:
        """pytest-html: the verdict in colour, the profiles, the root causes, the next
        actions and the LLM latency table, above its own summary (and, once written,
        above the environment)."""
        found = self._html_view()
        if found is not None:
            target, (verdict, view), results = found
            prefix.extend(summary_html(verdict_lines(verdict), verdict["profiles"], view,
                                       root_causes(results), next_actions(results)[:5],
                                       coverage(results)))
            prefix.extend(llm_html(verdict.get("llm")))
            if self._html_report is not None:  # rendered after this hook returns
                failing = sum(r["outcome"] in ("failed", "error") for r in results)
                self._html_report.title = page_title(target.get("url"), verdict["profiles"],
                                                     failing)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """The report's opening, short: verdict, the first root causes and actions."""
        if self.report is not None:
            terminalreporter.write_sep("-", "sidecar verdict")
            for line in terminal_lines(self.report):
                terminalreporter.write_line(line)
        for violation in self.violations:
            terminalreporter.write_line(violation, red=True)
        if self.paths:
            terminalreporter.write_line("sidecar reports: " + ", ".join(self.paths)
                                        + f" ({os.path.join(self.root, LATEST)} points here)")
        if self.kept:
            latest = os.path.join(self.root, LATEST)
            terminalreporter.write_line(f"sidecar: no test ran, so no report was written; "
                                        f"{latest} still points at the last run's")


def _beside_contract(html_path: str, run_dir: str) -> bytes:
    """pytest-html's page, its contract links rewritten for a copy inside the run's
    directory (beside contract.md)."""
    with open(html_path, "rb") as handle:
        page = handle.read()
    far = os.path.relpath(os.path.join(run_dir, CONTRACT_DOC),
                          os.path.dirname(os.path.abspath(html_path)))
    # The page holds its rows as escaped JSON: match the path, whatever quotes it.
    return page.replace(f"{far}#".encode(), f"{CONTRACT_DOC}#".encode())


def _nothing_ran(events: list[dict[str, Any]], exitstatus: int | pytest.ExitCode) -> bool:
    """No test reported a phase, and pytest says why (nothing collected or selected, or a
    usage error): such a run has nothing to report."""
    return int(exitstatus) in (pytest.ExitCode.NO_TESTS_COLLECTED, pytest.ExitCode.USAGE_ERROR) \
        and not any(e.get("event") == "phase" for e in events)


def terminal_lines(report: Report, top: int = 3) -> list[str]:
    """The verdict lines, then the first `top` root causes and next actions."""
    lines = verdict_lines(report["verdict"])
    lines += [f"Cause {i}: {c['tests']} failing: {c['cause']}"
              for i, c in enumerate(report["root_causes"][:top], 1)]
    lines += [f"Action {i}: {a['action']} ({a['tests']} test{'s' if a['tests'] != 1 else ''}"
              f"{'; contract ' + ', '.join(a['contract']) if a['contract'] else ''})"
              for i, a in enumerate(report["next_actions"][:top], 1)]
    return lines


def unreachable(results: list[Result]) -> list[str]:
    """A run whose target never answered fails, whatever the skips say: one line."""
    skipped = [r for r in results if r["reason_code"] == "TARGET_UNREACHABLE"]
    if not skipped:
        return []
    reason = (skipped[0]["reason"] or "").removeprefix("TARGET_UNREACHABLE: ").split(";")[0]
    return [f"sidecar: the target never answered, so {len(skipped)} specs could not run: "
            f"{reason}"]


def _ts(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _workers(config: pytest.Config) -> int:
    value = config.getoption("numprocesses", None) if config.pluginmanager.hasplugin(
        "xdist") else None
    return value if isinstance(value, int) else 0
