"""The detection matrix's judging (scripts/detection/matrix.py): a defect is caught only by
a listed spec failing for the defect's own clause, and every other outcome is named."""

from __future__ import annotations

from typing import Any

import pytest
from scripts.detection import matrix
from scripts.detection.matrix import cites, judge, sections

DEFECT = "no-explanation-metadata"  # clause §2.1; expected: the metadata spec
LIFECYCLE = ("tests/e2e/test_trace_workflow.py::"
             "test_an_explained_chat_carries_its_explanation_metadata[sentence-None]")
OTHER = "tests/e2e/test_cors.py::test_other_origins_get_no_allow_headers"


def failed(nodeid: str, reason: str, code: str | None = None) -> dict[str, Any]:
    return {"nodeid": nodeid, "outcome": "failed", "reason": reason, "reason_code": code}


def test_a_section_cites_only_itself() -> None:
    assert cites("§2.1: metadata missing", "§2.1")
    assert not cites("§2.10: 405 without Allow", "§2.1")
    assert not cites("§2.1: metadata missing", "§2")
    assert not cites("§2.11: origin echoed", "§2.1")
    assert cites("§2/error-body and §2.1/metadata", "§2")
    assert cites("DECLARED_BUT_MISSING: x; action: y (contract §2.3)", "§2.3")
    assert cites("DECLARED_BUT_MISSING: x (CONTRACT §2.3)", "§2.3")
    assert not cites("DECLARED_BUT_MISSING: x (contract §2.2)", "§2.3")


def test_the_reporters_certifies_suffix_is_not_a_citation() -> None:
    reason = "AssertionError: assert 1 == 2 [certifies §2.1, §4]"
    assert sections(reason) == set()
    assert not cites(reason, "§2.1")


def test_a_listed_spec_failing_for_the_clause_is_caught_and_clean() -> None:
    verdict = judge(DEFECT, [failed(LIFECYCLE, "§2.1: no explanation_metadata"),
                             {"nodeid": OTHER, "outcome": "passed"}])
    assert verdict.caught and verdict.clean
    assert verdict.expected_failed == [LIFECYCLE] and verdict.passed == 1


def test_a_listed_spec_failing_for_another_clause_is_miscited_not_caught() -> None:
    verdict = judge(DEFECT, [failed(LIFECYCLE, "§4: dangling node id")])
    assert not verdict.caught and verdict.miscited == [LIFECYCLE]
    assert verdict.unmet == list(matrix.EXPECTED[DEFECT])


def test_a_bare_assertion_of_a_listed_spec_is_miscited() -> None:
    verdict = judge(DEFECT, [failed(LIFECYCLE, "assert None [certifies §2.1]")])
    assert not verdict.caught and verdict.miscited == [LIFECYCLE]


def test_an_unlisted_failure_is_a_cascade_unless_a_typed_precondition_of_the_clause() -> None:
    typed = failed(OTHER, "DECLARED_BUT_MISSING: explain: x (contract §2.1)",
                   "DECLARED_BUT_MISSING")
    other_clause = failed(OTHER + "[b]", "DECLARED_BUT_MISSING: y (contract §2.10)",
                          "DECLARED_BUT_MISSING")
    untyped = failed(OTHER + "[c]", "§2.1: an untyped failure elsewhere")
    verdict = judge(DEFECT, [failed(LIFECYCLE, "§2.1: missing"), typed, other_clause,
                             untyped])
    assert verdict.precondition == [OTHER]
    assert verdict.cascade == [OTHER + "[b]", OTHER + "[c]"]
    assert verdict.caught and not verdict.clean


def test_every_listed_entry_must_fail_unless_it_may(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(matrix.EXPECTED, DEFECT, (LIFECYCLE.split("[")[0], OTHER))
    verdict = judge(DEFECT, [failed(LIFECYCLE, "§2.1: missing")])
    assert verdict.caught and verdict.unmet == [OTHER] and not verdict.clean
    monkeypatch.setitem(matrix.MAY_FAIL, DEFECT, {OTHER: "only when the explainer is slow"})
    assert judge(DEFECT, [failed(LIFECYCLE, "§2.1: missing")]).clean


def test_nothing_failing_is_missed() -> None:
    verdict = judge(DEFECT, [{"nodeid": LIFECYCLE, "outcome": "passed"}])
    assert not verdict.caught and not verdict.clean and verdict.unmet


def test_the_headline_counts_every_defect() -> None:
    verdict = judge(DEFECT, [failed(LIFECYCLE, "§2.1: missing")])
    line = matrix.markdown([verdict]).splitlines()[-1]
    assert f"Caught 1 / 1 ({len(matrix.DEFECTS)} defects in all), clean 1" in line
