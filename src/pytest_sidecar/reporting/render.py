"""Render the report model to sidecar-report.json and sidecar-report.md (atomically).

The Markdown follows seed 000's layout: environment, summary, results table, details
with contract references and actions, next actions, re-run command; plus the
per-profile conformance view.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from typing import Any

from ..atomic import write_atomic
from .redaction import Redactor

STATUS = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "skipped": "SKIP",
          "xfailed": "XFAIL", "xpassed": "XPASS"}
_MAX_FAILURE_LINES = 30


def _cell(value: Any) -> str:
    return " ".join(str(value or "").split()).replace("|", "\\|")


def _is_table(value: Any) -> bool:
    return (isinstance(value, list) and bool(value) and all(isinstance(r, dict) for r in value)
            and len({tuple(r) for r in value}) == 1)


def _evidence_lines(evidence: list[dict[str, Any]]) -> list[str]:
    lines = []
    for item in evidence:
        for key, value in item.items():
            if _is_table(value):  # a list of same-shaped rows: a Markdown table
                columns = list(value[0])
                lines += [f"  - {key}:", "", "    | " + " | ".join(columns) + " |",
                          "    |" + "---|" * len(columns)]
                lines += ["    | " + " | ".join(_cell(row[c]) for c in columns) + " |"
                          for row in value]
                lines.append("")
                continue
            shown = json.dumps(value, default=str) if not isinstance(value, str) else value
            lines.append(f"  - {key}: {shown[:300]}")
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    env, summary, run = report["environment"], report["summary"], report["run"]
    target = env.get("target", {})
    out = ["# pytest-sidecar report", ""]
    out += [f"Run `{run.get('id')}`, started {run.get('started')}, "
            f"{run.get('duration_s')} s, exit status {run.get('exit_status')}"
            f"{', strict' if run.get('strict') else ''}"
            f"{', ' + str(run['workers']) + ' xdist workers' if run.get('workers') else ''}.", ""]
    causes = report.get("root_causes", [])
    if causes:
        failing = sum(cause["tests"] for cause in causes)
        out += ["## Root causes", "",
                f"{failing} failing tests, {len(causes)} distinct causes, most tests first:", ""]
        for index, cause in enumerate(causes, 1):
            shared = (f"{cause['tests']} failures share one cause"
                      if cause["tests"] > 1 else "1 failure")
            out.append(f"{index}. {shared}: {cause['cause']}"
                       f"{' (' + ', '.join(cause['contract']) + ')' if cause['contract'] else ''}"
                       f"; e.g. {', '.join(cause['examples'])}")
        out.append("")
    out += ["## Environment", ""]
    out.append(f"- target: {target.get('url', 'not resolved')} ({target.get('origin', '-')})")
    out.append(f"- capabilities: {', '.join(target.get('capabilities', [])) or 'none'}")
    for name, value, source in report["environment"].get("settings", []):
        out.append(f"- {name}: {value} ({source})")
    out.append(f"- python: {env.get('python')} on {env.get('platform')}")
    packages = env.get("packages", {})
    out.append("- packages: " + ", ".join(f"{k} {v}" for k, v in packages.items()))
    out.append("- tools:")
    out += [f"  - {tool}: {info}" for tool, info in env.get("tools", {}).items()]
    out += ["", "## Summary", ""]
    out += [f"- Collected: {summary['collected']}", f"- Total: {summary['total']}"]
    out += [f"- {key.capitalize()}: {summary[key]}"
            for key in ("passed", "failed", "error", "skipped", "xfailed", "xpassed")]
    for violation in report.get("run_failures", []) + report.get("strict_violations", []):
        out.append(f"- Strict: {violation}")
    out += ["", "## Results table", "", "| Test | Status | Duration(ms) | Reason |",
            "|------|--------|--------------|--------|"]
    for result in report["results"]:
        out.append(f"| {_cell(result['nodeid'])} | {STATUS[result['outcome']]} | "
                   f"{result['duration_ms']} | {_cell(result['reason'])} |")
    out += ["", "## Conformance by profile", "",
            "| Profile | Passed | Failed | Untested | Not declared | Tests | Pass | Fail | Skip |",
            "|---|---|---|---|---|---|---|---|---|"]
    for profile, row in report["conformance"].items():
        by = {verdict: ", ".join(n for n, v in row["capabilities"].items() if v == verdict)
              for verdict in ("passed", "failed", "untested", "not declared")}
        out.append(f"| {profile} | {_cell(by['passed'])} | {_cell(by['failed'])} | "
                   f"{_cell(by['untested'])} | {_cell(by['not declared'])} | {row['tests']} | "
                   f"{row['passed']} | {row['failed'] + row['error']} | {row['skipped']} |")
    cover = report.get("coverage")
    if cover:
        out += ["", "## Contract coverage", "",
                f"{cover['asserted']} of {cover['total']} contract clauses asserted by this run.",
                "", "| Profile | Clauses | Asserted | Held |", "|---|---|---|---|"]
        out += [f"| {profile} | {row['clauses']} | {row['asserted']} | {row['held']} |"
                for profile, row in cover["profiles"].items()]
        if cover["not_asserted"]:
            out += ["", "Not asserted by this run:", ""]
            out += [f"- {item['clause']}: {item['text']}"
                    f"{' (' + item['owner'] + ')' if item['owner'] else ''}"
                    for item in cover["not_asserted"]]
    out += ["", "## Detailed results", ""]
    for result in report["results"]:
        out += [f"### {result['nodeid']}", "", f"- Status: {STATUS[result['outcome']]}"]
        if result["reason"]:
            out.append(f"- Reason: {result['reason']}")
        if result["contract"]:
            out.append(f"- Contract references: {', '.join(result['contract'])}")
        if result["action"]:
            out.append(f"- Action: {result['action']}")
        if result["evidence"]:
            out.append("- Evidence:")
            out += _evidence_lines(result["evidence"])
        elif result["outcome"] == "passed":
            out.append("- Evidence: none recorded")
        for figure in result.get("figures", []):
            out += ["", f"![{figure['name']}]({figure['file']})"]
        if result["longrepr"]:
            lines = result["longrepr"].splitlines()[-_MAX_FAILURE_LINES:]
            out += ["", "```", *lines, "```"]
        out.append("")
    if report.get("advisories"):
        out += ["## Advisories", "",
                "Not required by the contract; worth a look:", ""]
        out += [f"- {item['advice']} ({item['nodeid']})" for item in report["advisories"]]
        out.append("")
    out += ["## Next actions", ""]
    actions = report["next_actions"]
    for cause in causes[:5]:
        if cause["tests"] > 1:
            out.append(f"- Fix first: {cause['cause']} ({cause['tests']} tests)")
    if not actions:
        out.append("None: every selected spec ran and passed." if summary["failed"] +
                   summary["error"] == 0 else "Fix the failures listed above.")
    for index, item in enumerate(actions, 1):
        out.append(f"{index}) {item['action']} ({item['tests']} tests, e.g. "
                   f"{', '.join(item['examples'])})")
    out += ["", "## Re-run command", "", "```", report["rerun"].get("all", "pytest"), "```"]
    if report["rerun"].get("failed"):
        out += ["", "Failures only:", "", "```", report["rerun"]["failed"], "```"]
    return "\n".join(out) + "\n"


def _write_figures(report: dict[str, Any], directory: str) -> None:
    """Write each result's SVG figures to a fresh figures/ and keep only their file names
    in the report. The directory is built aside and swapped in whole, so a figure of an
    earlier run never lingers beside this run's report."""
    staging = tempfile.mkdtemp(prefix=".figures-", dir=directory)
    os.chmod(staging, 0o755)  # reports are world-readable (mkdtemp makes 0700)
    for number, result in enumerate(report["results"]):
        for index, figure in enumerate(result.get("figures", [])):
            name = re.sub(r"[^A-Za-z0-9]+", "-", result["name"]).strip("-")[:80]
            filename = f"{number:03d}-{name}-{index}.svg"
            write_atomic(os.path.join(staging, filename), figure.pop("svg").encode())
            figure["file"] = f"figures/{filename}"
    final = os.path.join(directory, "figures")
    retired = f"{staging}.old"
    if os.path.isdir(final):
        os.rename(final, retired)
    if os.listdir(staging):
        os.rename(staging, final)
    else:
        os.rmdir(staging)
    shutil.rmtree(retired, ignore_errors=True)


def write_reports(report: dict[str, Any], directory: str, redactor: Redactor) -> list[str]:
    """Redact, then atomically write the JSON and Markdown reports; returns their paths."""
    os.makedirs(directory, exist_ok=True)
    clean = redactor.data(report)
    _write_figures(clean, directory)
    paths = [os.path.join(directory, "sidecar-report.json"),
             os.path.join(directory, "sidecar-report.md")]
    write_atomic(paths[0], (json.dumps(clean, indent=2, default=str) + "\n").encode())
    write_atomic(paths[1], redactor.text(render_markdown(clean)).encode())
    return paths
