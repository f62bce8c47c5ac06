"""The fake upstream's text: deterministic and sized."""

from __future__ import annotations

from pytest_sidecar.stack.text import fake_completion, sentences, tokenize


def test_fake_completions_are_deterministic_and_sized() -> None:
    assert fake_completion("p", "m", None) == fake_completion("p", "m", None)
    assert fake_completion("p", "m", None) != fake_completion("q", "m", None)
    assert len(tokenize(fake_completion("p", "m", 123))) == 123
    assert len(sentences(fake_completion("p", "m", None))) >= 2
