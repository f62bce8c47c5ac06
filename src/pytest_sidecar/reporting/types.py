"""The typed shapes of the report pipeline: event → result → report.

They are TypedDicts, not classes, on purpose: the event log and sidecar-report.json are
public JSON documents, and a TypedDict is exactly that JSON, checked by mypy at every
step from the pytest hook to the Markdown. A test attempt is keyed by (nodeid, worker,
rerun), as xdist and pytest-rerunfailures report it.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

Outcome = Literal["passed", "failed", "error", "skipped", "xfailed", "xpassed"]
OUTCOMES: tuple[Outcome, ...] = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


class _Verdict(TypedDict):
    """What a phase event and a result share: why, under which clauses, with what proof."""

    reason: str | None
    reason_code: str | None
    action: str | None
    contract: list[str]
    profile: str
    markers: list[str]
    clauses: list[str]
    needs: list[str]
    evidence: list[dict[str, Any]]
    figures: list[dict[str, Any]]
    advisories: list[str]


class PhaseEvent(_Verdict):
    """One line of the event log per test phase (setup, call, teardown; xdist reports a
    crashed worker's test as one phase named '???')."""

    event: Literal["phase"]
    nodeid: str
    when: str
    outcome: str
    worker: str
    rerun: int
    duration: float
    wasxfail: str | None
    longrepr: str | None
    reproduce: str | None
    strict: bool  # a skip that --sidecar-strict turned into this failure


class TargetInfo(TypedDict, total=False):
    url: str | None
    origin: str
    capabilities: list[str]
    implementation: dict[str, Any]  # the target file's implementation block


class Rerun(TypedDict, total=False):
    all: str
    failed: str


class Result(_Verdict):
    """One test's folded outcome, as sidecar-report.json lists it."""

    nodeid: str
    file: str
    name: str
    outcome: Outcome
    duration_ms: int
    worker: str | None
    longrepr: str | None
    reproduce: str | None  # a failure's last request as curl (tokens as $ENV references)


class RootCause(TypedDict):
    cause: str
    tests: int
    reason_code: str | None
    action: str | None
    contract: list[str]
    examples: list[str]


class NextAction(TypedDict):
    action: str
    tests: int
    examples: list[str]
    contract: list[str]  # the sections its tests certify (docs/contract.md anchors)


class Advisory(TypedDict):
    nodeid: str
    advice: str


class Report(TypedDict):
    """sidecar-report.json (schema pytest-sidecar/report-v1), in its key order: the
    verdict first, details after."""

    schema: str
    verdict: dict[str, Any]
    run: dict[str, Any]
    environment: dict[str, Any]
    summary: dict[str, int | None]
    strict_violations: list[str]
    root_causes: list[RootCause]
    results: list[Result]
    conformance: dict[str, dict[str, Any]]
    coverage: dict[str, Any]
    advisories: list[Advisory]
    next_actions: list[NextAction]
    rerun: Rerun
    run_failures: list[str]
