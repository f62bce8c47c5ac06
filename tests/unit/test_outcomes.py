"""Typed reason lines and the strict-mode rules."""

from __future__ import annotations

from pytest_sidecar.outcomes import format_line, parse_line, strict_violations


def test_reason_lines_round_trip() -> None:
    line = format_line("NOT_DECLARED", "the target does not\ndeclare 'auth'",
                       "set AUTH_MODE=static", "§3")
    assert "\n" not in line
    parsed = parse_line("Skipped: " + line)
    assert parsed is not None
    assert (parsed.code, parsed.action, parsed.contract) == ("NOT_DECLARED",
                                                             "set AUTH_MODE=static", "§3")
    assert parsed.text == "the target does not declare 'auth'"


def test_untyped_lines_are_not_parsed() -> None:
    assert parse_line("AssertionError: 1 != 2") is None
    assert parse_line("") is None


def test_strict_fails_a_declared_capability_that_no_selected_spec_exercised() -> None:
    results = [{"nodeid": "a", "outcome": "passed", "markers": [], "needs": ["chat"]},
               {"nodeid": "b", "outcome": "skipped", "markers": [], "needs": ["chat_stream"]},
               {"nodeid": "c", "outcome": "passed", "markers": [], "needs": []}]
    declared = ["chat", "chat_stream", "cors"]  # cors: no selected spec needs it
    assert strict_violations(True, results, "", (), declared) == [
        "strict: declared capability 'chat_stream' was exercised by no spec"]
    assert strict_violations(False, results, "", (), declared) == []
    assert strict_violations(True, results, "", {"b"}, ["chat"]) == []
