"""junit.xml: one testcase per spec, for CI systems that read JUnit XML.

Written from the report model, not by pytest's own `--junitxml`, so that it holds one
testcase per spec (pytest's writer adds one for a teardown error beside the call's),
carries each spec's profile, sections and evidence as properties, and, like every other
artifact, only text the redactor already cleaned.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter

from .types import Report, Result

FILENAME = "junit.xml"


def _classname(result: Result) -> str:
    return result["file"].removesuffix(".py").replace("/", ".")


def _testcase(result: Result) -> ET.Element:
    case = ET.Element("testcase", classname=_classname(result), name=result["name"],
                      time=f"{result['duration_ms'] / 1000:.3f}")
    properties = ET.SubElement(case, "properties")
    for name, value in (("profile", result["profile"]),
                        ("contract", ", ".join(result["contract"])),
                        ("evidence", json.dumps(result["evidence"], default=str))):
        if value:
            ET.SubElement(properties, "property", name=name, value=value)
    reason = (result["reason"] or "").splitlines()[0] if result["reason"] else ""
    outcome = result["outcome"]
    if outcome in ("failed", "error"):
        tag = "failure" if outcome == "failed" else "error"
        ET.SubElement(case, tag, message=reason).text = result["longrepr"] or reason
    elif outcome == "skipped":
        ET.SubElement(case, "skipped", message=reason)
    return case


def render_junit(report: Report) -> bytes:
    """The JUnit XML document of one run."""
    results = report["results"]
    counts = Counter(r["outcome"] for r in results)
    suite = ET.Element("testsuite", name="pytest-sidecar", tests=str(len(results)),
                       failures=str(counts["failed"]), errors=str(counts["error"]),
                       skipped=str(counts["skipped"]),
                       time=f"{report['run'].get('duration_s') or 0:.3f}",
                       timestamp=str(report["run"].get("started") or ""))
    suite.extend(_testcase(result) for result in results)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"
