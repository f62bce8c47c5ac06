"""What the run history says: flaky tests, SLO and LLM figure trends with a regression
flag, and the quality gate of one run. Pure functions over rows of the store."""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .settings import Gate

JUDGED = ("passed", "failed", "error")
MIN_HISTORY = 3  # prior figures a regression flag needs (fewer: "not enough history")
NOISE_K = 3.0  # a figure beyond median ± 3 robust standard deviations has moved
NOISE_FLOOR = 0.05  # ... and by more than 5 % of the median (quantised figures)


def flaky_tests(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Flaky tests over (run seq, run id, nodeid, outcome) rows, oldest run first.

    Allure's rule: a test that failed, passed in a later run, then failed again. And the
    switch rate: outcome changes (pass <-> fail) per consecutive pair of judged runs.
    Skips are not judgements and are left out of both."""
    series: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    for _, run_id, nodeid, outcome in rows:
        if outcome in JUDGED:
            series[nodeid].append((run_id, outcome == "passed"))
    flaky = []
    for nodeid, history in series.items():
        passes = [ok for _, ok in history]
        switches = sum(1 for a, b in itertools.pairwise(passes) if a != b)
        allure = _failed_passed_failed(passes)
        if allure or switches:
            flaky.append({"nodeid": nodeid, "allure_flaky": allure, "switches": switches,
                          "switch_rate": round(switches / (len(passes) - 1), 3),
                          "runs": len(passes), "last": "passed" if passes[-1] else "failed",
                          "history": ["P" if ok else "F" for ok in passes]})
    return sorted(flaky, key=lambda f: (not f["allure_flaky"], -f["switch_rate"], f["nodeid"]))


def _failed_passed_failed(passes: Sequence[bool]) -> bool:
    stage = 0  # 0: looking for a failure, 1: for a pass after it, 2: for a failure again
    for ok in passes:
        if stage == 0 and not ok:
            stage = 1
        elif stage == 1 and ok:
            stage = 2
        elif stage == 2 and not ok:
            return True
    return False


def slo_trends(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Per SLO name: its figures run by run (oldest first) and whether the newest moved
    beyond the run-to-run noise of the ones before it, in the worse direction (SLO
    figures are latencies and error rates: higher is worse)."""
    series: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for seq, run_id, name, outcome, measured, threshold in rows:
        if measured is not None:
            series[name].append({"seq": seq, "run_id": run_id, "value": measured,
                                 "threshold": threshold, "outcome": outcome})
    return [{"name": name, "points": points, **regression([p["value"] for p in points])}
            for name, points in sorted(series.items())]


def figure_trends(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Per measured figure (the LLM latency figures: TTFT p90, tokens/s, ...): its values
    run by run (oldest first), flagged when the newest moved beyond the noise in the
    direction that is worse for it (a latency up, a throughput down)."""
    series: dict[str, list[dict[str, Any]]] = defaultdict(list)
    better: dict[str, str] = {}
    for seq, run_id, name, value, unit, direction in rows:
        series[name].append({"seq": seq, "run_id": run_id, "value": value, "unit": unit,
                             "threshold": None})
        better[name] = direction
    return [{"name": name, "points": points, "better": better[name],
             **regression([p["value"] for p in points],
                          higher_is_worse=better[name] != "higher")}
            for name, points in sorted(series.items())]


def regression(values: Sequence[float], higher_is_worse: bool = True) -> dict[str, Any]:
    """{"regressed": bool | None, "why": text}: None when there is too little history."""
    if len(values) < MIN_HISTORY + 1:
        return {"regressed": None,
                "why": f"{len(values) - 1} earlier runs; {MIN_HISTORY} are needed"}
    *before, latest = values
    median = statistics.median(before)
    mad = statistics.median(abs(v - median) for v in before)
    noise = max(NOISE_K * 1.4826 * mad, NOISE_FLOOR * abs(median))
    regressed = latest > median + noise if higher_is_worse else latest < median - noise
    return {"regressed": regressed,
            "why": f"{latest:.4g} against a median of {median:.4g} ± {noise:.3g} "
                   f"over {len(before)} runs"}


def evaluate_gate(gate: Gate, counts: Mapping[str, int], slos: Iterable[Mapping[str, Any]]
                  ) -> dict[str, Any]:
    """The gate's checks on one run's counts and SLO verdicts; passed when all hold."""
    failures = counts.get("failed", 0) + counts.get("error", 0)
    tests = counts.get("total", 0)
    skips = counts.get("skipped", 0)
    checks = [{"name": "failures", "ok": failures <= gate.max_failures,
               "detail": f"{failures} failed (at most {gate.max_failures})"},
              {"name": "tests", "ok": tests >= gate.min_tests,
               "detail": f"{tests} tests (at least {gate.min_tests})"}]
    if gate.max_skips is not None:
        checks.append({"name": "skips", "ok": skips <= gate.max_skips,
                       "detail": f"{skips} skipped (at most {gate.max_skips})"})
    if gate.slo_must_pass:
        missed = [s["name"] for s in slos if s.get("outcome") != "PASS"]
        checks.append({"name": "slos", "ok": not missed,
                       "detail": f"not PASS: {', '.join(missed)}" if missed
                       else "every SLO measured passed (or none was measured)"})
    return {"passed": all(c["ok"] for c in checks), "checks": checks}
