"""sidecar-report.md as an ordered list of sections, each a function of the report.

The verdict first: target and profiles, SLOs with their figures, the LLM latency
figures with their definitions, root causes ranked, next actions. Then the details:
environment, summary, results table (identical skips collapsed into one row),
conformance and coverage, details with contract references and evidence, advisories;
the re-run command last. Plugins add sections through the
`pytest_sidecar_report_sections` hook (hookspecs.py); theirs go before the re-run
command.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from ..vocabulary.contract_doc import linkify_markdown
from .llm import llm_section
from .types import Report, Result
from .verdict import MARK, verdict_lines

Section = Callable[[Report], list[str]]
STATUS = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "skipped": "SKIP",
          "xfailed": "XFAIL", "xpassed": "XPASS"}
_MAX_FAILURE_LINES = 30


def _cell(value: Any) -> str:
    return " ".join(str("" if value is None else value).split()).replace("|", "\\|")


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


def title(report: Report) -> list[str]:
    run = report["run"]
    return ["# pytest-sidecar report", "",
            f"Run `{run.get('id')}`, started {run.get('started')}, "
            f"{run.get('duration_s')} s, exit status {run.get('exit_status')}"
            f"{', strict' if run.get('strict') else ''}"
            f"{', ' + str(run['workers']) + ' xdist workers' if run.get('workers') else ''}.",
            ""]


def verdict(report: Report) -> list[str]:
    return ["## Verdict", "", *(f"- {line}" for line in verdict_lines(report["verdict"])), ""]


def llm_latency(report: Report) -> list[str]:
    return llm_section(report["verdict"].get("llm"))


def _skip_groups(results: list[Result]) -> dict[str, list[Result]]:
    """Skipped results by their reason: a chat-only target skips most of the suite for a
    handful of reasons, one row each."""
    groups: dict[str, list[Result]] = {}
    for result in results:
        if result["outcome"] == "skipped":
            groups.setdefault(result["reason"] or "no reason given", []).append(result)
    return groups


def _examples(members: list[Result]) -> str:
    shown = ", ".join(m["nodeid"] for m in members[:3])
    return shown + (f" and {len(members) - 3} more" if len(members) > 3 else "")


def root_causes(report: Report) -> list[str]:
    causes = report["root_causes"]
    if not causes:
        return []
    failing = sum(cause["tests"] for cause in causes)
    out = ["## Root causes", "",
           f"{failing} failing tests, {len(causes)} distinct causes, most tests first:", ""]
    for index, cause in enumerate(causes, 1):
        shared = (f"{cause['tests']} failures share one cause"
                  if cause["tests"] > 1 else "1 failure")
        out.append(f"{index}. {shared}: {_linked(cause['cause'])}"
                   f"{_sections(cause['contract'])}; e.g. {', '.join(cause['examples'])}")
    return [*out, ""]


def environment(report: Report) -> list[str]:
    env = report["environment"]
    target = env.get("target", {})
    out = ["## Environment", "",
           f"- target: {target.get('url', 'not resolved')} ({target.get('origin', '-')})",
           f"- capabilities: {', '.join(target.get('capabilities', [])) or 'none'}"]
    out += [f"- {name}: {value} ({source})" for name, value, source in env.get("settings", [])]
    out.append(f"- python: {env.get('python')} on {env.get('platform')}")
    packages = env.get("packages", {})
    out.append("- packages: " + ", ".join(f"{k} {v}" for k, v in packages.items()))
    out.append("- tools:")
    out += [f"  - {tool}: {info}" for tool, info in env.get("tools", {}).items()]
    return [*out, ""]


def summary(report: Report) -> list[str]:
    counts = report["summary"]
    out = ["## Summary", "", f"- Collected: {counts['collected']}", f"- Total: {counts['total']}"]
    out += [f"- {key.capitalize()}: {counts[key]}"
            for key in ("passed", "failed", "error", "skipped", "xfailed", "xpassed")]
    out += [f"- Strict: {violation}"
            for violation in report["run_failures"] + report["strict_violations"]]
    return [*out, ""]


def results_table(report: Report) -> list[str]:
    out = ["## Results table", "", "| Test | Status | Duration(ms) | Reason |",
           "|------|--------|--------------|--------|"]
    out += [f"| {_cell(result['nodeid'])} | {STATUS[result['outcome']]} | "
            f"{result['duration_ms']} | {_linked(_cell(result['reason']))} |"
            for result in report["results"] if result["outcome"] != "skipped"]
    out += [f"| {len(members)} tests: {_cell(_examples(members))} | SKIP | "
            f"{sum(m['duration_ms'] for m in members)} | {_linked(_cell(reason))} |"
            for reason, members in _skip_groups(report["results"]).items()]
    return [*out, ""]


def conformance(report: Report) -> list[str]:
    out = ["## Conformance by profile", "",
           "| Profile | Verdict | Passed | Failed | Untested | Not declared | Tests | Pass | "
           "Fail | Skip |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    verdicts = report["verdict"].get("profiles", {})
    for profile, row in report["conformance"].items():
        by = {verdict: ", ".join(n for n, v in row["capabilities"].items() if v == verdict)
              for verdict in ("passed", "failed", "untested", "not declared")}
        verdict = verdicts.get(profile, "")
        shown = f"{MARK.get(verdict, '')} {verdict}".strip()
        out.append(f"| {profile} | {shown} | {_cell(by['passed'])} | {_cell(by['failed'])} | "
                   f"{_cell(by['untested'])} | {_cell(by['not declared'])} | {row['tests']} | "
                   f"{row['passed']} | {row['failed'] + row['error']} | {row['skipped']} |")
    return [*out, ""]


def coverage(report: Report) -> list[str]:
    cover = report["coverage"]
    if not cover:
        return []
    out = ["## Contract coverage", "",
           f"{cover['asserted']} of {cover['total']} contract clauses asserted by this run.",
           "", "| Profile | Clauses | Asserted | Held |", "|---|---|---|---|"]
    out += [f"| {profile} | {row['clauses']} | {row['asserted']} | {row['held']} |"
            for profile, row in cover["profiles"].items()]
    if cover["not_asserted"]:
        out += ["", "Not asserted by this run:", ""]
        out += [f"- {item['clause']}: {item['text']}"
                f"{' (' + item['owner'] + ')' if item['owner'] else ''}"
                for item in cover["not_asserted"]]
    return [*out, ""]


def _detail(result: Result) -> list[str]:
    out = [f"### {result['nodeid']}", "", f"- Status: {STATUS[result['outcome']]}"]
    if result["reason"]:
        out.append(f"- Reason: {_linked(result['reason'])}")
    if result["contract"]:
        out.append(f"- Contract references: {', '.join(_linked(c) for c in result['contract'])}")
    if result["action"]:
        out.append(f"- Action: {_linked(result['action'])}")
    if result["evidence"]:
        out.append("- Evidence:")
        out += _evidence_lines(result["evidence"])
    elif result["outcome"] == "passed":
        out.append("- Evidence: none recorded")
    for figure in result["figures"]:
        out += ["", f"![{figure['name']}]({figure['file']})"]
    if result["longrepr"]:
        lines = result["longrepr"].splitlines()[-_MAX_FAILURE_LINES:]
        out += ["", "```", *lines, "```"]
    if result.get("reproduce"):
        out += ["", "Reproduce (its last request; set the token variables first):", "",
                "```sh", str(result["reproduce"]), "```"]
    return [*out, ""]


def details(report: Report) -> list[str]:
    out = ["## Detailed results", ""]
    for result in report["results"]:
        if result["outcome"] != "skipped":
            out += _detail(result)
    for reason, members in _skip_groups(report["results"]).items():
        first = members[0]
        out += [f"### Skipped: {len(members)} tests", "", f"- Reason: {_linked(reason)}"]
        if first["action"]:
            out.append(f"- Action: {_linked(first['action'])}")
        out += ["- Tests:", *(f"  - {m['nodeid']}" for m in members), ""]
    return out


def advisories(report: Report) -> list[str]:
    if not report["advisories"]:
        return []
    return ["## Advisories", "", "Not required by the contract; worth a look:", "",
            *(f"- {item['advice']} ({item['nodeid']})" for item in report["advisories"]), ""]


def next_actions(report: Report) -> list[str]:
    out = ["## Next actions", ""]
    actions = report["next_actions"]
    if not actions:
        out.append("None: every selected spec ran and passed.")
    out += [f"{index}. {_linked(item['action'])} ({_count(item['tests'])}, e.g. "
            f"{', '.join(item['examples'])}){_sections(item['contract'])}"
            for index, item in enumerate(actions, 1)]
    return [*out, ""]


def _count(tests: int) -> str:
    return f"{tests} test" if tests == 1 else f"{tests} tests"


def _linked(text: str) -> str:
    """`§n.m` references as links to docs/contract.md, copied beside the report."""
    return linkify_markdown(text)


def _sections(refs: Sequence[str]) -> str:
    return f"; contract {', '.join(_linked(r) for r in refs)}" if refs else ""


def rerun(report: Report) -> list[str]:
    commands = report["rerun"]
    out = ["## Re-run command", "", "```", commands.get("all", "pytest"), "```"]
    if commands.get("failed"):
        out += ["", "Failures only:", "", "```", commands["failed"], "```"]
    return out


# The built-in sections, in order; extra sections from plugins go before CLOSING.
SECTIONS: tuple[Section, ...] = (title, verdict, llm_latency, root_causes, next_actions,
                                 environment, summary, results_table, conformance, coverage,
                                 details, advisories)
CLOSING: tuple[Section, ...] = (rerun,)


def render_markdown(report: Report, extra: Sequence[Sequence[str]] = ()) -> str:
    """The Markdown report: the built-in sections, then `extra` (each a list of lines
    starting with its '## ' heading), then the re-run command."""
    out: list[str] = []
    for section in SECTIONS:
        out += section(report)
    for lines in extra:
        out += [*lines, ""] if lines and lines[-1] != "" else list(lines)
    for section in CLOSING:
        out += section(report)
    return "\n".join(out) + "\n"
