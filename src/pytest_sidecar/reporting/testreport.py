"""What rides on a pytest TestReport from the worker to the controller's reporter.

The test's marks (as a Meta property), pytest-html extras, and the redaction at the
source: terminal, JUnit XML and pytest-html are written by pytest from these reports,
so a report is cleaned here, once, before anything reads it.
"""

from __future__ import annotations

from typing import Any

import pytest

from ..vocabulary.keys import (
    EVIDENCE_PROPERTY,
    FIGURE_PROPERTY,
    META_PROPERTY,
    REPRODUCE_PROPERTY,
    Meta,
)
from ..vocabulary.redaction import Redactor
from .html import evidence_html, failure_html, figure_html


def attach_meta(report: pytest.TestReport, meta: Meta) -> None:
    """The test's marks, for the controller's reporter (user_properties cross xdist)."""
    report.user_properties.append((META_PROPERTY, meta))


def meta_of(report: pytest.TestReport) -> dict[str, Any]:
    """The Meta a report carries ({} for a report that has none, e.g. a crashed worker)."""
    for key, value in report.user_properties:
        if key == META_PROPERTY and isinstance(value, dict):
            return value
    return {}


def properties(report: pytest.TestReport, key: str) -> list[Any]:
    """Every user property of one key, in the order the test recorded them."""
    return [value for name, value in report.user_properties if name == key]


def add_html_extras(report: pytest.TestReport, meta: Meta, contract_doc: str) -> None:
    """pytest-html: for a failure what it certifies (linked into `contract_doc`) and its
    reproduce command, then the call's evidence as inline tables and its figures drawn
    inline."""
    from pytest_html import extras

    facts = properties(report, EVIDENCE_PROPERTY)
    figures: list[Any] = properties(report, FIGURE_PROPERTY)
    report_extras: list[Any] = getattr(report, "extras", [])
    if report.failed:
        reproduce = next(iter(properties(report, REPRODUCE_PROPERTY)), None)
        report_extras.append(extras.html(failure_html(meta["contract"], meta["clauses"],
                                                      reproduce, contract_doc)))
    if facts:
        report_extras.append(extras.html(evidence_html(facts)))
    report_extras += [extras.html(figure_html(f["name"], f["svg"])) for f in figures]
    # pytest-html reads `report.extras`; TestReport allows extra attributes.
    setattr(report, "extras", report_extras)  # noqa: B010


def drop_fixture_reprs(report: pytest.TestReport) -> None:
    """A failure's traceback without the repr of every argument of the failing frames
    (`evidence = <...Evidence object at 0x7f...>`, `quiet_target = QuietTarget(...)`):
    the reason, the evidence and the reproduce command say what happened; the reprs only
    bury it. Done on the worker, so the terminal, JUnit and HTML all show it short."""
    longrepr = report.longrepr
    chain = getattr(longrepr, "chain", None)
    tracebacks = [element[0] for element in chain] if chain else [
        getattr(longrepr, "reprtraceback", None)]
    for traceback in tracebacks:
        for entry in getattr(traceback, "reprentries", None) or []:
            if getattr(entry, "reprfuncargs", None) is not None:
                entry.reprfuncargs = None


# The redacted crash message of a failure whose traceback was redacted into plain text.
CRASH_ATTRIBUTE = "sidecar_crash"


def redact_report(report: pytest.TestReport, redactor: Redactor) -> None:
    """Redact at the source, so terminal, JUnit, HTML and our reports all see it clean."""
    text = report.longreprtext
    if text and redactor.text(text) != text:
        crash = getattr(report.longrepr, "reprcrash", None)
        if crash is not None:
            # The text replaces the structured failure: keep its one-line message, or the
            # reason would become the traceback's first line (a fixture's repr).
            setattr(report, CRASH_ATTRIBUTE, redactor.text(crash.message))
        if isinstance(report.longrepr, tuple):
            path, line, reason = report.longrepr
            report.longrepr = (path, line, redactor.text(str(reason)))
        else:
            report.longrepr = redactor.text(text)
    report.sections = [(redactor.text(t), redactor.text(c)) for t, c in report.sections]
    report.user_properties = [(k, redactor.data(v)) for k, v in report.user_properties]
    if hasattr(report, "extras"):
        setattr(report, "extras", redactor.data(report.extras))  # noqa: B010
