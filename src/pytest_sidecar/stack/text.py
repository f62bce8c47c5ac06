"""Text helpers shared by the fake upstream and the HIF builder.

One tokenizer defines "output token" for both, so `usage.completion_tokens` equals the
number of `output_token` nodes the explainer builds.
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import Any

_TOKEN = re.compile(r"\w+|[^\w\s]")
_SENTENCE = re.compile(r"[^.!?]+[.!?]*")

_VOCABULARY = (
    "the gateway routes each request through a sparse feature dictionary so that every "
    "answer can be traced to the concepts that shaped it while the explainer builds a "
    "hypergraph of layers tokens and circuits from activations measured on the model"
)
_WORDS = tuple(_VOCABULARY.split(" "))


def text_of(content: Any) -> str:
    """A message's text: the string, or the text parts of a content array joined."""
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content
                       if isinstance(part, dict) and part.get("type") == "text")
    return str(content if content is not None else "")


def tokenize(text: str) -> list[str]:
    """Split text into the tokens the stack counts (words and punctuation)."""
    return _TOKEN.findall(text)


def deltas(text: str) -> list[str]:
    """The text cut into one piece per token, each with the whitespace before it, so the
    pieces of a streamed answer join back into exactly the text a plain chat answers."""
    ends = [match.end() for match in _TOKEN.finditer(text)]
    if not ends:
        return [text] if text else []
    ends[-1] = len(text)  # trailing whitespace rides with the last token
    return [text[a:b] for a, b in zip([0, *ends], ends, strict=False)]


def cut_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    """(the text before the first stop sequence, whether one was found)."""
    found = [i for i in (text.find(stop) for stop in stops if stop) if i >= 0]
    return (text[:min(found)], True) if found else (text, False)


def sentences(text: str) -> list[str]:
    """Split text into sentences (at least one for non-empty text)."""
    found = [s.strip() for s in _SENTENCE.findall(text) if s.strip()]
    return found or ([text.strip()] if text.strip() else [])


def seed_of(*parts: str) -> int:
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def fake_completion(prompt: str, model: str, max_tokens: int | None) -> str:
    """A deterministic completion for a prompt: same prompt and model, same text.

    Without max_tokens it is 2-4 sentences; with it, sentences are added until the
    completion has exactly max_tokens tokens (capped at 2048) so callers can ask for
    long explanation work.
    """
    rng = random.Random(seed_of(model, prompt))
    target = min(max_tokens, 2048) if max_tokens else None
    parts: list[str] = []
    count = 0
    for index in range(10_000):
        if target is None and index >= rng.randint(2, 4):
            break
        words = [rng.choice(_WORDS) for _ in range(rng.randint(5, 11))]
        sentence = " ".join(words).capitalize() + "."
        if target is not None:
            room = target - count
            if room <= 0:
                break
            tokens = tokenize(sentence)
            if len(tokens) > room:  # trim so the total is exact
                sentence = " ".join(tokens[:room])
        parts.append(sentence)
        count += len(tokenize(sentence))
    return " ".join(parts)
