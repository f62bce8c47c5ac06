"""Thresholds on a run's per-lane figures, as k6 has them: `chat:p95<500` passes when the
chat lane's p95 is under 500 ms. A lane without samples fails its threshold: no data is
never a pass."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .table import lane_rows

STATS = {"p50": "p50_ms", "p95": "p95_ms", "p99": "p99_ms", "max": "max_ms",
         "error_pct": "error_pct", "count": "count"}
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
_FORM = re.compile(r"^(?P<lane>[\w:-]+):(?P<stat>\w+)(?P<op><=|>=|<|>)(?P<value>[\d.]+)$")


@dataclass(frozen=True)
class Threshold:
    lane: str
    stat: str
    op: str
    value: float

    def __str__(self) -> str:
        return f"{self.lane}:{self.stat}{self.op}{self.value:g}"


def parse_threshold(text: str) -> Threshold:
    """`LANE:STAT<VALUE` (also <=, >, >=); STAT is one of STATS; latencies in ms."""
    match = _FORM.match(text.replace(" ", ""))
    if not match or match["stat"] not in STATS:
        raise ValueError(f"{text!r}: valid: LANE:STAT<VALUE with STAT one of "
                         f"{', '.join(STATS)} (e.g. chat:p95<500, chat:error_pct<0.1)")
    try:
        value = float(match["value"])
    except ValueError:
        raise ValueError(f"{text!r}: {match['value']!r} is not a number") from None
    return Threshold(match["lane"], match["stat"], match["op"], value)


def judge(summary: dict[str, Any], thresholds: Sequence[Threshold]) -> list[tuple[bool, str]]:
    """(passed, k6-style line) per threshold."""
    rows = {row["lane"]: row for row in lane_rows(summary)}
    judged = []
    for threshold in thresholds:
        measured = rows.get(threshold.lane, {}).get(STATS[threshold.stat])
        if measured is None:
            judged.append((False, f"✗ {threshold}: no samples in lane {threshold.lane!r}"))
            continue
        passed = _OPS[threshold.op](float(measured), threshold.value)
        judged.append((passed, f"{'✓' if passed else '✗'} {threshold}: measured {measured:g}"))
    return judged
