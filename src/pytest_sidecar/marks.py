"""Markers: their registration, and the pure rules that act on them per test."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from .capabilities import CAPABILITIES, missing_capabilities, unknown_capabilities
from .fixtures.contracts import EVIDENCE_PROPERTY, FIGURE_PROPERTY
from .outcomes import FailReason, SkipReason, fail, skip
from .reporting.redaction import Redactor

META_PROPERTY = "sidecar_meta"
# Marker groups a run can select with -m; under --sidecar-strict a selected group that
# executed nothing fails the run.
GROUPS = ("slo", "load", "chaos", "fuzz", "security", "platform", "disruptive", "throttle",
          "timing")

MARKERS = (
    "needs(*capabilities): the spec needs these target capabilities (e.g. 'auth', "
    "'tenants:2'); not declared -> skip NOT_DECLARED, declared but probe fails -> fail",
    "contract(*sections): the CONTRACT.md sections this spec certifies (e.g. '§2.2')",
    "clause(*ids): the contract clauses this spec asserts (pytest_sidecar.clauses, e.g. "
    "'§2.5/ids'); the report's coverage counts them",
    "profile(name): the conformance profile the spec counts towards (core, explain, "
    "security, observability, performance, platform, resilience)",
    "slo: SLO verdicts under load (run with -m slo)",
    "load: generates load; runs serially, never beside other xdist workers",
    "chaos: injects faults into the target and checks recovery",
    "fuzz: contract fuzzing (needs the schemathesis extra)",
    "security: access control, isolation, audit and hostile-input specs",
    "platform: Helm/ArgoCD/KEDA/Karpenter manifest specs",
    "throttle: empties a tenant's rate-limit buckets; runs with no other spec beside it, so "
    "its counts stay exact and no one else waits on the buckets",
    "timing: measures the target's own pacing (quiet stretches of a stream); runs with no "
    "other spec beside it, whose load would change what it measures",
    "disruptive: takes part of the target down for a while; on a shared target, other specs "
    "running at the same time may fail (deselect with -m 'not disruptive')",
)


# Load must not share cores with other xdist workers; disruption (a dependency switched
# off) and fuzzing (bursts of odd requests) must not make specs running beside them fail
# on a shared target.
SERIAL_MARKERS = ("load", "slo", "disruptive", "fuzz", "throttle", "timing")


def runs_alone(item: pytest.Item) -> bool:
    """Specs that load, disrupt or fuzz the target run with no other spec beside them."""
    return any(item.get_closest_marker(name) for name in SERIAL_MARKERS)


def asserted_clauses(item: pytest.Item) -> list[str]:
    return [str(c) for mark in item.iter_markers("clause") for c in mark.args]


def needed_capabilities(item: pytest.Item) -> list[str]:
    return [str(name) for mark in item.iter_markers("needs") for name in mark.args]


def enforce_needs(state: Any, names: list[str]) -> None:
    """Skip (not declared) or fail (declared, probe failed) before fixtures run."""
    unknown = unknown_capabilities(names)
    if unknown:
        pytest.fail(f"needs({', '.join(map(repr, unknown))}): unknown capability; known: "
                    f"{', '.join(CAPABILITIES)}", pytrace=False)
    target = state.reachable_target()
    missing = missing_capabilities(names, target.capabilities)
    if missing:
        first = missing[0]
        skip(SkipReason.NOT_DECLARED,
             f"the target does not declare {', '.join(repr(c.name) for c in missing)}",
             first.action, first.section)
    for name in names:
        problem = state.probe(name)
        if problem:
            cap = CAPABILITIES[name]
            fail(FailReason.DECLARED_BUT_MISSING, f"{name}: {problem}",
                 "fix the target or stop declaring it", cap.section)


def missing_evidence(item: pytest.Item) -> bool:
    """A test that asked for `evidence` must have recorded some to pass."""
    uses = "evidence" in getattr(item, "fixturenames", ())
    return uses and not any(key == EVIDENCE_PROPERTY for key, _ in item.user_properties)


def skip_reason(report: pytest.TestReport) -> str:
    if isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return report.longreprtext


def _profile(item: pytest.Item) -> str:
    mark = item.get_closest_marker("profile")
    if mark and mark.args:
        return str(mark.args[0])
    needs = needed_capabilities(item)
    return CAPABILITIES[needs[0]].profile if needs and needs[0] in CAPABILITIES else "core"


def _contract(item: pytest.Item) -> list[str]:
    sections = [str(s) for mark in item.iter_markers("contract") for s in mark.args]
    sections += [CAPABILITIES[n].section for n in needed_capabilities(item) if n in CAPABILITIES]
    return list(dict.fromkeys(sections))


def annotate(item: pytest.Item, report: pytest.TestReport) -> None:
    """Attach what the controller's reporter needs (markers, contract, profile, html)."""
    markers = sorted({m.name for m in item.iter_markers()
                      if m.name not in ("parametrize", "usefixtures", "filterwarnings")})
    report.user_properties.append((META_PROPERTY, {
        "markers": markers, "contract": _contract(item), "profile": _profile(item),
        "clauses": asserted_clauses(item), "needs": needed_capabilities(item)}))
    if report.when == "call" and item.config.pluginmanager.hasplugin("html"):
        from pytest_html import extras

        facts = [v for k, v in report.user_properties if k == EVIDENCE_PROPERTY]
        figures: list[Any] = [v for k, v in report.user_properties if k == FIGURE_PROPERTY]
        if facts or figures:
            report_extras: list[Any] = getattr(report, "extras", [])
            if facts:
                report_extras.append(extras.json(json.dumps(facts, default=str),
                                                 name="Evidence"))
            report_extras += [extras.svg(base64.b64encode(f["svg"].encode()).decode(),
                                         name=f["name"]) for f in figures]
            # pytest-html reads `report.extras`; TestReport allows extra attributes.
            setattr(report, "extras", report_extras)  # noqa: B010


def redact_report(report: pytest.TestReport, redactor: Redactor) -> None:
    """Redact at the source, so terminal, JUnit, HTML and our reports all see it clean."""
    text = report.longreprtext
    if text and redactor.text(text) != text:
        if isinstance(report.longrepr, tuple):
            path, line, reason = report.longrepr
            report.longrepr = (path, line, redactor.text(str(reason)))
        else:
            report.longrepr = redactor.text(text)
    report.sections = [(redactor.text(t), redactor.text(c)) for t, c in report.sections]
    report.user_properties = [(k, redactor.data(v)) for k, v in report.user_properties]
    if hasattr(report, "extras"):
        setattr(report, "extras", redactor.data(report.extras))  # noqa: B010
