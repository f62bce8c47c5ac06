"""The redactor: registered secrets and known shapes are masked everywhere."""

from __future__ import annotations

from pytest_sidecar.vocabulary.redaction import MASK, Redactor


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
