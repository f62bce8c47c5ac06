"""The verdict a report opens with: the target and what it declared, one line per
conformance profile, the SLO verdicts with their figures (k6-style ✓/✗), so that an SRE
reading a blocked release knows the answer before the details. A pure function of the
report's parts; the Markdown, the HTML summary and the terminal all print these lines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..vocabulary.defaults import CHAT_SLO_CLAUSES, MAX_CHAT_ERROR_RATE, SLO_QUANTILE
from .llm import llm_figures, llm_line
from .types import Result

MARK = {"conformant": "✓", "not conformant": "✗", "incomplete": "?", "untested": "–",
        "not declared": "–",
        "PASS": "✓", "FAIL": "✗", "INSUFFICIENT_DATA": "?"}


def profile_verdict(row: Mapping[str, Any], unjudged: int = 0) -> str:
    """The one verdict of a profile, which every report prints: not conformant (a spec of
    the profile, or one needing a capability of it, failed), conformant (such specs ran
    and none failed), incomplete (none failed, but `unjudged` specs gave up for a reason
    other than a capability the target does not declare: too few samples, a missing
    tool), not declared (the target declares none of its capabilities and nothing ran),
    untested."""
    capabilities = row["capabilities"].values()
    if row["failed"] + row["error"] or "failed" in capabilities:
        return "not conformant"
    if row["passed"] or "passed" in capabilities:
        return "incomplete" if unjudged else "conformant"
    declared = [v for v in row["capabilities"].values() if v != "not declared"]
    return "not declared" if row["capabilities"] and not declared else "untested"


def slo_verdicts(results: Sequence[Result]) -> list[dict[str, Any]]:
    """The SLO verdicts the `slo` specs recorded (evidence `verdict`), in report order.
    Other load specs judge under overload, not the SLO's load: not SLO verdicts."""
    found = []
    for result in results:
        if "slo" not in result["markers"]:
            continue
        for item in result["evidence"]:
            verdict = item.get("verdict") if isinstance(item, dict) else None
            if isinstance(verdict, dict) and {"name", "outcome"} <= verdict.keys():
                found.append({key: verdict.get(key) for key in
                              ("name", "outcome", "measured", "threshold", "samples", "detail")})
    return found


def build_verdict(target: Mapping[str, Any], conformance: Mapping[str, Mapping[str, Any]],
                  results: Sequence[Result]) -> dict[str, Any]:
    """The verdict block of sidecar-report.json."""
    return {"target": {"url": target.get("url"), "origin": target.get("origin"),
                       "declared": list(target.get("capabilities", []))},
            "profiles": {name: profile_verdict(row, sum(
                1 for r in results if r["profile"] == name and r["outcome"] == "skipped"
                and r["reason_code"] != "NOT_DECLARED")) for name, row in conformance.items()},
            "slos": slo_verdicts(results),
            "llm": llm_figures(results),
            "resilience": resilience_score(results)}


def resilience_score(results: Sequence[Result]) -> dict[str, Any] | None:
    """The SLO-weighted share of the resilience profile's specs that held: each spec
    counts the nines of the SLO its clauses protect (`slo_weight`). The 95 % Wilson
    interval is taken over the weights' effective number of specs (Kish's
    (sum w)^2 / sum w^2), so a few heavy specs are not read as many. None when no spec
    was judged."""
    from ..chaos.checks import wilson

    judged = [r for r in results if r["profile"] == "resilience"
              and r["outcome"] in ("passed", "failed", "error")]
    if not judged:
        return None
    weight = {r["nodeid"]: slo_weight(r.get("clauses") or []) for r in judged}
    held = [r for r in judged if r["outcome"] == "passed"]
    total = sum(weight.values())
    score = sum(weight[r["nodeid"]] for r in held) / total
    effective = total * total / sum(w * w for w in weight.values())
    low, high = wilson(score * effective, effective, z=1.96)
    return {"score": round(score, 3), "held": len(held), "judged": len(judged),
            "ci95": [round(low, 3), round(high, 3)], "weighting": "SLO nines"}


def slo_weight(clauses: Sequence[str]) -> float:
    """The nines of the strictest SLO a spec's clauses protect: chat success (99.9 %)
    for the chat-lane clauses, explanation latency (p95) for the others."""
    chat = -math.log10(MAX_CHAT_ERROR_RATE)
    explanation = -math.log10(1 - SLO_QUANTILE)
    return chat if any(c.startswith(CHAT_SLO_CLAUSES) for c in clauses) else explanation


def _figure(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def slo_line(slo: Mapping[str, Any]) -> str:
    """`✓ explanation p95 (sentence): 0.283 ≤ 2 (143 samples)`, as k6 prints thresholds."""
    mark = MARK.get(str(slo["outcome"]), "?")
    samples = f" ({slo['samples']} samples)" if slo.get("samples") is not None else ""
    if slo["outcome"] == "INSUFFICIENT_DATA" or slo.get("measured") is None:
        why = f": {slo['detail']}" if slo.get("detail") else ""
        return f"{mark} {slo['name']}: {slo['outcome']}{samples}{why}"
    relation = "≤" if slo["outcome"] == "PASS" else ">"
    return (f"{mark} {slo['name']}: {_figure(slo['measured'])} {relation} "
            f"{_figure(slo['threshold'])}{samples}")


def verdict_lines(verdict: Mapping[str, Any]) -> list[str]:
    """The verdict as short lines: target, profiles, then one line per SLO."""
    target = verdict["target"]
    lines = [f"Target {target['url'] or 'not resolved'} ({target['origin'] or '-'}); "
             f"declared: {', '.join(target['declared']) or 'nothing'}",
             "Profiles: " + " · ".join(f"{name} {MARK[v]} {v}"
                                       for name, v in verdict["profiles"].items())]
    slos = verdict["slos"]
    lines += [f"SLO {slo_line(s)}" for s in slos] or [
        "SLOs: none measured in this run (pytest -m slo measures them)"]
    if verdict.get("llm"):
        lines.append(llm_line(verdict["llm"]))
    score = verdict.get("resilience")
    if score:
        lines.append(f"Resilience score {score['score']:.2f} (SLO-weighted): {score['held']} of "
                     f"{score['judged']} specs held (95 % interval {score['ci95'][0]:.2f}"
                     f"-{score['ci95'][1]:.2f})")
    return lines
