"""The fake upstream's answers (docs/contract.md §2.12): `length` exactly when the
client's max_tokens cut a choice, stop sequences left out, and streamed pieces that join
into the plain answer."""

from __future__ import annotations

from pytest_sidecar.stack.text import deltas, fake_completion, tokenize
from pytest_sidecar.stack.upstream import answers

ASK = [{"role": "user", "content": "Describe the sea."}]


def test_length_only_when_max_tokens_cut_the_choice() -> None:
    cut = answers({"model": "m", "messages": ASK, "n": 3, "max_tokens": 5})
    assert [(len(tokenize(text)), finish) for text, finish in cut] == [(5, "length")] * 3
    roomy = answers({"model": "m", "messages": ASK, "n": 3, "max_tokens": 100})
    assert roomy[0][1] == "length" and [f for _, f in roomy[1:]] == ["stop", "stop"]
    assert {f for _, f in answers({"model": "m", "messages": ASK, "n": 2})} == {"stop"}


def test_a_stop_sequence_ends_the_answer_before_it() -> None:
    (text, finish), = answers({"model": "m", "messages": ASK, "stop": [" "]})
    assert " " not in text and text and finish == "stop"


def test_streamed_pieces_join_into_the_plain_text() -> None:
    text = fake_completion("hello", "m", None)
    assert "".join(deltas(text)) == text and len(deltas(text)) == len(tokenize(text))
