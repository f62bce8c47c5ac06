"""The openai profile (tests/e2e/test_openai_sdk.py) as a whole: against the reference
stack nothing fails; against a stack that says `stop` for an answer max_tokens cut,
exactly the two finish_reason specs fail; without the SDK, every spec skips TOOL_MISSING."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SPECS = str(REPO / "tests" / "e2e" / "test_openai_sdk.py")


def failed(pytester: pytest.Pytester) -> dict[str, str]:
    """Failed spec -> its reason, from the run's report."""
    report = json.loads((pytester.path / "reports" / "latest" / "sidecar-report.json"
                         ).read_text())
    return {r["name"]: r["reason"] or "" for r in report["results"]
            if r["outcome"] in ("failed", "error")}


@pytest.mark.parametrize(("defects", "expected"), [
    pytest.param("", set(), id="reference-stack"),
    pytest.param("finish-reason-stop-on-cut",
                 {"test_a_cut_answer_says_length", "test_a_cut_stream_says_length"},
                 id="finish-reason-stop-on-cut"),
])
def test_the_openai_profile_fails_exactly_its_clause(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, defects: str,
        expected: set[str]) -> None:
    pytest.importorskip("openai", reason="TOOL_MISSING: pip install -e '.[dev]'")
    monkeypatch.setenv("SIDECAR_DEFECTS", defects)
    result = pytester.runpytest_subprocess(SPECS, "-p", "no:cacheprovider",
                                           f"--basetemp={pytester.path / 'bt'}", timeout=300)
    outcomes = result.parseoutcomes()
    assert outcomes.get("skipped", 0) == 0, outcomes
    assert outcomes.get("passed", 0) == 16 - len(expected), outcomes
    reasons = failed(pytester)
    assert set(reasons) == expected
    assert all(reason.startswith("§2.12: max_tokens=3 cut")
               for reason in reasons.values()), reasons


def test_without_the_sdk_every_spec_skips_tool_missing(
        pytester: pytest.Pytester, hide_package: Callable[[str], None]) -> None:
    hide_package("openai")
    result = pytester.runpytest_subprocess(SPECS, "-p", "no:cacheprovider", "-rs",
                                           f"--basetemp={pytester.path / 'bt'}", timeout=300)
    outcomes = result.parseoutcomes()
    assert outcomes.get("skipped", 0) == 16 and len(outcomes) == 1, outcomes
    result.stdout.fnmatch_lines(["*TOOL_MISSING: the openai SDK is not installed; action: "
                                 "pip install 'pytest-sidecar*"])
