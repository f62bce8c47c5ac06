"""Typed reason lines round-trip; the redactor removes every secret shape we know."""

from __future__ import annotations

from pytest_sidecar.outcomes import format_line, parse_line
from pytest_sidecar.vocabulary.redaction import MASK, Redactor


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


def test_registered_secrets_and_known_shapes_are_masked() -> None:
    redactor = Redactor(["tok-a-123456", "short"])
    text = ("token tok-a-123456, header Authorization: Bearer abcdefghijkl, stack sct_"
            "AbCdEf0123456789xyz, openai sk-abcdefghijklmnopqrstu, aws AKIAABCDEFGHIJKLMNOP, "
            "jwt eyJhbGciOiJI.eyJzdWIiOiIx.c2lnbmF0dXJl, word short")
    clean = redactor.text(text)
    for secret in ("tok-a-123456", "abcdefghijkl", "sct_AbCdEf", "sk-abcdef", "AKIAABCD",
                   "eyJhbGci"):
        assert secret not in clean
    assert "word short" in clean, "secrets shorter than 6 characters are not registered"
    assert clean.count(MASK) == 6


def test_data_is_redacted_recursively_including_keys() -> None:
    redactor = Redactor(["secret-value-1"])
    data = {"secret-value-1": ["x secret-value-1", ("secret-value-1",)], "n": 1}
    assert redactor.data(data) == {MASK: [f"x {MASK}", (MASK,)], "n": 1}


def test_strict_fails_a_declared_capability_that_no_selected_spec_exercised() -> None:
    from pytest_sidecar.outcomes import strict_violations

    results = [{"nodeid": "a", "outcome": "passed", "markers": [], "needs": ["chat"]},
               {"nodeid": "b", "outcome": "skipped", "markers": [], "needs": ["chat_stream"]},
               {"nodeid": "c", "outcome": "passed", "markers": [], "needs": []}]
    declared = ["chat", "chat_stream", "cors"]  # cors: no selected spec needs it
    assert strict_violations(True, results, "", (), declared) == [
        "strict: declared capability 'chat_stream' was exercised by no spec"]
    assert strict_violations(False, results, "", (), declared) == []
    assert strict_violations(True, results, "", {"b"}, ["chat"]) == []
