"""Scrubber benchmark: throughput on hostile inputs at 100 kB and 1 MB (linear time means
the ratio stays near 10), and precision/recall on the shipped labelled corpus.

    python benchmarks/scrubber.py
"""

from __future__ import annotations

import json
import time
from importlib import resources

from pytest_sidecar.contracts.pii import scrub

HOSTILE = {
    "digits and spaces": "1 " * 500_000, "at signs": "a@" * 500_000,
    "plus and digits": "+1 " * 333_334, "digit dashes": "1-" * 500_000,
    "bearer words": "bearer " * 150_000, "hex runs": "ab12" * 250_000,
    "jwt starts": "eyJ." * 250_000, "card-like groups": "4111 " * 200_000,
}


def timed(text: str) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        scrub(text)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    print(f"{'input':20s} {'100 kB ms':>10s} {'1 MB ms':>10s} {'ratio':>6s} {'MB/s':>6s}")
    for name, text in HOSTILE.items():
        small, large = timed(text[:100_000]), timed(text[:1_000_000])
        print(f"{name:20s} {small * 1000:10.1f} {large * 1000:10.1f} {large / small:6.1f} "
              f"{1 / large:6.1f}")
    corpus = resources.files("pytest_sidecar.contracts").joinpath("pii_corpus.jsonl")
    rows = [json.loads(line) for line in corpus.read_text().splitlines()]
    positives = [r for r in rows if r["label"] != "NONE"]
    negatives = [r for r in rows if r["label"] == "NONE"]
    found = sum(1 for r in positives
                if r["value"] not in (out := scrub(r["text"])) and f"[{r['label']}]" in out)
    false = sum(1 for r in negatives if scrub(r["text"]) != r["text"])
    print(f"corpus: recall {found}/{len(positives)} = {found / len(positives):.4f}; "
          f"false positives {false}/{len(negatives)}; precision "
          f"{found / max(1, found + false):.4f}")


if __name__ == "__main__":
    main()
