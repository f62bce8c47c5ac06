"""conformance-report.yaml: the run in the shape of Gateway API's `ConformanceReport`, a
format conformance readers already know (the Go type `conformance/apis/v1`; its JSON
Schema is `contracts/conformance_report.schema.json`).

Per profile that ran: a `core` status over the specs of its core, an `extended` status
over the specs of its optional features, with the features the target declares
(`supportedFeatures`) and those it does not (`unsupportedFeatures`). As in Gateway API,
what a target does not claim is not attempted, so `NOT_DECLARED` skips are not counted:
`Skipped` counts only specs that were attempted and could not judge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..vocabulary.capabilities import PROFILES, extended_features
from .types import Report, Result

API_VERSION = "pytest-sidecar.dev/v1"
KIND = "ConformanceReport"
CONTRACT_VERSION = "v1"  # the API version docs/contract.md describes
FILENAME = "conformance-report.yaml"

_PASSED = ("passed", "xfailed", "xpassed")
_FAILED = ("failed", "error")


def _not_claimed(result: Result) -> bool:
    return result["outcome"] == "skipped" and result.get("reason_code") == "NOT_DECLARED"


def status(results: Sequence[Result]) -> dict[str, Any] | None:
    """Gateway API's Status of a set of specs (None when none was attempted)."""
    counted = [r for r in results if not _not_claimed(r)]
    if not counted:
        return None
    passed = sum(r["outcome"] in _PASSED for r in counted)
    failed = [r["nodeid"] for r in counted if r["outcome"] in _FAILED]
    skipped = [r["nodeid"] for r in counted if r["outcome"] == "skipped"]
    found: dict[str, Any] = {
        "result": "failure" if failed else "partial" if skipped else "success",
        "statistics": {"Failed": len(failed), "Passed": passed, "Skipped": len(skipped)}}
    if skipped:
        found["skippedTests"] = skipped
    if failed:
        found["failedTests"] = failed
    return found


def _summary(core: dict[str, Any] | None, extended: dict[str, Any] | None) -> str:
    words = {"success": "succeeded", "partial": "partially succeeded",
             "failure": "failed"}
    parts = []
    for level, found in (("Core", core), ("Extended", extended)):
        if found is None:
            continue
        stats = found["statistics"]
        line = f"{level} tests {words[found['result']]}"
        if stats["Failed"]:
            line += f" with {stats['Failed']} test failure{'s' * (stats['Failed'] != 1)}"
        elif stats["Skipped"]:
            line += f" with {stats['Skipped']} test{'s' * (stats['Skipped'] != 1)} skipped"
        parts.append(line + ".")
    return " ".join(parts) or "No test of this profile was attempted."


def profile_report(name: str, results: Sequence[Result],
                   declared: Sequence[str]) -> dict[str, Any] | None:
    """One ProfileReport, or None when nothing of the profile was attempted."""
    features = extended_features(name)
    mine = [r for r in results if r["profile"] == name]
    optional = [r for r in mine if set(r.get("needs", ())) & set(features)]
    core = status([r for r in mine if r not in optional])
    extended = status(optional)
    supported = [f for f in features if f in declared]
    if core is None and extended is None and not supported:
        return None
    found: dict[str, Any] = {"name": name, "summary": _summary(core, extended)}
    found["core"] = core or {"result": "success",
                             "statistics": {"Failed": 0, "Passed": 0, "Skipped": 0}}
    if features:
        block = extended or {"result": "success",
                             "statistics": {"Failed": 0, "Passed": 0, "Skipped": 0}}
        if supported:
            block["supportedFeatures"] = supported
        unsupported = [f for f in features if f not in declared]
        if unsupported:
            block["unsupportedFeatures"] = unsupported
        found["extended"] = block
    return found


def build_conformance_report(report: Report) -> dict[str, Any]:
    """The ConformanceReport of one run (the report model is its only input)."""
    target = report["environment"].get("target", {})
    declared = list(target.get("capabilities", []))
    implementation = {"organization": "", "project": "", "url": target.get("url") or "",
                      "version": "", "contact": [], **target.get("implementation", {})}
    profiles = [found for name in PROFILES
                if (found := profile_report(name, report["results"], declared))]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "date": report["run"].get("finished") or report["run"].get("started") or "",
        "contractVersion": CONTRACT_VERSION,
        "mode": "strict" if report["run"].get("strict") else "default",
        "implementation": implementation,
        "profiles": profiles,
    }


def render_conformance_report(report: Report) -> str:
    import yaml

    return yaml.safe_dump(build_conformance_report(report), sort_keys=False)
