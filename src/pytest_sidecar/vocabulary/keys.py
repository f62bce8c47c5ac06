"""Report keys: the names per-test data travels under, from a spec to the reports."""

from __future__ import annotations

from typing import TypedDict

# TestReport.user_properties keys (they ride on the report from xdist workers).
EVIDENCE_PROPERTY = "sidecar_evidence"
FIGURE_PROPERTY = "sidecar_figure"
ADVISORY_PROPERTY = "sidecar_advisory"
META_PROPERTY = "sidecar_meta"
# A failed spec's last request as a curl command, tokens as environment references.
REPRODUCE_PROPERTY = "sidecar_reproduce"
SIDECAR_PROPERTIES = frozenset({EVIDENCE_PROPERTY, FIGURE_PROPERTY, ADVISORY_PROPERTY,
                                META_PROPERTY, REPRODUCE_PROPERTY})


class Meta(TypedDict):
    """The value under META_PROPERTY: what a test's marks say, attached to each of its
    reports on the worker."""

    markers: list[str]
    contract: list[str]
    profile: str
    clauses: list[str]
    needs: list[str]


# Files in the report directory.
EVENT_LOG = "sidecar-events.jsonl"
REPORT_JSON = "sidecar-report.json"
REPORT_MARKDOWN = "sidecar-report.md"
REPORT_SCHEMA = "pytest-sidecar/report-v1"
