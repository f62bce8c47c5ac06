"""The PII scrubber (contracts/pii.py) that the suite uses to judge audit snippets meets
its precision and recall on the labelled corpus shipped in the package. A check of this
repository's own code: it says nothing about a target, so it is a self-test."""

from __future__ import annotations

import json
from importlib import resources

from pytest_sidecar.contracts.pii import PLACEHOLDERS, scrub

LABELS = ("EMAIL", "PHONE", "CARD", "SSN", "IBAN", "SECRET")
MIN_RECALL, MAX_FALSE_POSITIVE_RATE = 0.99, 0.002


def test_scrubber_precision_and_recall_on_the_labelled_corpus() -> None:
    corpus = resources.files("pytest_sidecar.contracts").joinpath("pii_corpus.jsonl")
    rows = [json.loads(line) for line in corpus.read_text().splitlines()]
    positives = [r for r in rows if r["label"] != "NONE"]
    negatives = [r for r in rows if r["label"] == "NONE"]
    assert len(positives) >= 500 and len(negatives) >= 2000, (len(positives), len(negatives))
    recall = {}
    for label in LABELS:
        cases = [r for r in positives if r["label"] == label]
        assert cases, f"no {label} positives"
        hits = sum(1 for r in cases if r["value"] not in (out := scrub(r["text"]))
                   and f"[{label}]" in out)
        recall[label] = hits / len(cases)
    false = [r["text"] for r in negatives if scrub(r["text"]) != r["text"]]
    not_idempotent = [r["text"] for r in rows if scrub(scrub(r["text"])) != scrub(r["text"])]
    low = {label: value for label, value in recall.items() if value < MIN_RECALL}
    assert not low, f"recall below {MIN_RECALL}: {low}"
    assert len(false) / len(negatives) <= MAX_FALSE_POSITIVE_RATE, false[:5]
    assert not not_idempotent, not_idempotent[:3]
    assert all(scrub(p) == p for p in PLACEHOLDERS)
