"""The report model: per-test results folded from the event log's phase events.

A pure function of the events (`build_report`), so a report can be rebuilt from any
event log, and every rule here is tested without pytest.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from ..vocabulary.capabilities import CAPABILITIES, PROFILES
from ..vocabulary.clauses import CLAUSES
from ..vocabulary.keys import REPORT_SCHEMA
from .types import OUTCOMES, Advisory, NextAction, Outcome, Report, Result, RootCause
from .verdict import build_verdict

_PHASES = ("setup", "call", "teardown")
Phases = Mapping[str, Mapping[str, Any]]  # one attempt's phase events by `when`


def fold_outcome(phases: Phases) -> Outcome:
    """One outcome per test from its setup/call/teardown phases (pytest's own rules)."""
    setup, call, teardown = (phases.get(w) for w in _PHASES)
    # xdist reports a crashed worker's test as one failed phase with when="???".
    crashed = any(p["outcome"] == "failed" for w, p in phases.items() if w not in _PHASES)
    if call and call.get("wasxfail") is not None and not crashed:
        return "xfailed" if call["outcome"] == "skipped" else "xpassed"
    if crashed or (call and call["outcome"] == "failed"):
        return "failed"
    if setup and setup["outcome"] == "failed":
        return "error"
    if (setup and setup["outcome"] == "skipped") or (call and call["outcome"] == "skipped"):
        return "skipped"
    if teardown and teardown["outcome"] == "failed":
        return "error"
    return "passed"


def _deciding_phase(phases: Phases, outcome: str) -> Mapping[str, Any]:
    for when in [*_PHASES, *(w for w in phases if w not in _PHASES)]:
        phase = phases.get(when)
        if phase and phase["outcome"] in ("failed", "skipped") and outcome != "passed":
            return phase
    return phases.get("call") or phases.get("setup") or {}


def attempts(events: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each test's last attempt, by nodeid in the order tests were first reported: phases
    are grouped by (nodeid, worker, rerun), and a rerun replaces the attempts before it."""
    grouped: dict[tuple[str, str, int], dict[str, Any]] = defaultdict(dict)
    for event in events:
        if event.get("event") == "phase":
            key = (event["nodeid"], str(event.get("worker")), int(event.get("rerun") or 0))
            grouped[key][event["when"]] = event
    last: dict[str, dict[str, Any]] = {}
    latest: dict[str, int] = {}
    for (nodeid, _worker, rerun), by_when in grouped.items():
        if rerun >= latest.get(nodeid, -1):
            latest[nodeid] = rerun
            last[nodeid] = by_when
    return last


def build_results(events: Sequence[Mapping[str, Any]]) -> list[Result]:
    """One result per test, in collection order (a test the log's collection does not
    list, e.g. from a cut-short log, follows in the order it was reported)."""
    results: list[Result] = []
    for nodeid, by_when in attempts(events).items():
        outcome = fold_outcome(by_when)
        deciding = _deciding_phase(by_when, outcome)
        first = next(iter(by_when.values()))
        results.append({
            "nodeid": nodeid,
            "file": nodeid.split("::")[0],
            "name": nodeid.split("::", 1)[-1],
            "outcome": outcome,
            "duration_ms": round(sum(p.get("duration", 0.0) for p in by_when.values()) * 1000),
            "reason": deciding.get("reason") if outcome != "passed" else None,
            "reason_code": deciding.get("reason_code") if outcome != "passed" else None,
            "action": deciding.get("action"),
            "contract": first.get("contract", []),
            "profile": first.get("profile", "core"),
            "markers": first.get("markers", []),
            "clauses": first.get("clauses", []),
            "needs": first.get("needs", []),
            "evidence": (by_when.get("call") or {}).get("evidence", []),
            "figures": (by_when.get("call") or {}).get("figures", []),
            "advisories": (by_when.get("call") or {}).get("advisories", []),
            "worker": first.get("worker"),
            "longrepr": deciding.get("longrepr") if outcome in ("failed", "error") else None,
            "reproduce": deciding.get("reproduce") if outcome in ("failed", "error") else None,
        })
    order = {nodeid: index for index, nodeid in enumerate(next(
        (e.get("ids") or [] for e in events if e.get("event") == "collected"), []))}
    return sorted(results, key=lambda r: order.get(r["nodeid"], len(order)))


def summarize(results: Sequence[Result], collected: int | None) -> dict[str, int | None]:
    counts = Counter(result["outcome"] for result in results)
    return {"collected": collected, "total": len(results),
            **{outcome: counts.get(outcome, 0) for outcome in OUTCOMES}}


def capability_verdicts(results: Sequence[Result],
                        capabilities: Sequence[str]) -> dict[str, str]:
    """Per capability: passed (specs needing it ran, none failed for it), failed, untested
    (declared, no spec needing it ran) or not declared. A failing spec counts against the
    capabilities of its own profile only (a webhook spec that needs chat fails webhooks,
    not chat; a security spec that needs chat fails the security profile, not chat), so
    a capability's verdict and its profile's never disagree."""
    exercised: set[str] = set()
    failing: set[str] = set()
    for result in results:
        needs = [n for n in result.get("needs", []) if n in CAPABILITIES]
        if result["outcome"] in ("passed", "failed", "error"):
            exercised.update(needs)
        if result["outcome"] in ("failed", "error"):
            failing.update(n for n in needs if CAPABILITIES[n].profile == result["profile"])
    verdicts = {}
    for name in CAPABILITIES:
        if name not in capabilities:
            verdicts[name] = "not declared"
        elif name in failing:
            verdicts[name] = "failed"
        else:
            verdicts[name] = "passed" if name in exercised else "untested"
    return verdicts


def conformance(results: Sequence[Result],
                capabilities: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per profile: each capability's verdict (from the specs that ran, never from the
    declaration alone), and the test outcomes."""
    verdicts = capability_verdicts(results, capabilities)
    view: dict[str, dict[str, Any]] = {}
    for profile in PROFILES:
        counts = Counter(r["outcome"] for r in results if r["profile"] == profile)
        view[profile] = {
            "capabilities": {name: verdicts[name] for name, cap in CAPABILITIES.items()
                             if cap.profile == profile},
            "tests": sum(counts.values()),
            **{outcome: counts.get(outcome, 0) for outcome in OUTCOMES},
        }
    return view


def coverage(results: Sequence[Result]) -> dict[str, Any]:
    """The contract clause by clause: per profile, how many of its clauses this run
    asserted (a spec naming the clause executed) and held (every such spec passed), out
    of all; and the clauses no executed spec asserted, with who owns each."""
    by_clause: dict[str, list[str]] = defaultdict(list)
    for result in results:
        if result["outcome"] in ("passed", "failed", "error"):
            for clause in result.get("clauses", []):
                if clause in CLAUSES:  # a misspelt id fails its spec; it asserts nothing
                    by_clause[clause].append(result["outcome"])
    profiles: dict[str, dict[str, int]] = {}
    for profile in PROFILES:
        ids = [c.id for c in CLAUSES.values() if c.profile == profile]
        asserted = [i for i in ids if i in by_clause]
        held = [i for i in asserted if set(by_clause[i]) == {"passed"}]
        profiles[profile] = {"clauses": len(ids), "asserted": len(asserted), "held": len(held)}
    missing = [{"clause": c.id, "text": c.text, "owner": c.owner}
               for c in CLAUSES.values() if c.id not in by_clause]
    return {"profiles": profiles, "total": len(CLAUSES), "asserted": len(by_clause),
            "not_asserted": missing}


def next_actions(results: Sequence[Result]) -> list[NextAction]:
    """What to do, most urgent first: fix each cause of failure in the target (failures
    make the run red), then the typed actions of skips (implement, install, configure),
    most tests first. Each carries the contract sections it concerns."""
    by_action: dict[str, list[Result]] = defaultdict(list)
    fixes: dict[str, str] = {}  # cause key -> the action, in the first failure's words
    for result in results:
        if result["outcome"] in ("passed", "xfailed", "xpassed"):
            continue
        action = result["action"]
        if not action and result["outcome"] in ("failed", "error"):
            reason = result["reason"] or f"{result['outcome']} with no message"
            action = fixes.setdefault(cause_key(reason), fix_action(reason, result["contract"]))
        if action:
            by_action[action].append(result)
    urgent = set(fixes.values())
    ranked = sorted(by_action.items(),
                    key=lambda item: (item[0] not in urgent, -len(item[1]), item[0]))
    return [{"action": action, "tests": len(members),
             "examples": [m["nodeid"] for m in members[:3]],
             "contract": sorted({c for m in members for c in m["contract"]})}
            for action, members in ranked]


def fix_action(reason: str, contract: Sequence[str]) -> str:
    """What to do about a failure without a typed action: bring the target in line with
    the sections the failure names (else those its spec certifies). The cause already
    says what is wrong; the action does not say it again."""
    named = list(dict.fromkeys(_SECTION.findall(_CERTIFIES.sub("", reason))))
    sections = named or list(contract)
    if not sections:
        return "fix the target so the failing spec passes (its cause says what is wrong)"
    return (f"fix the target to meet {', '.join(sections)} of docs/contract.md, then re-run "
            "the failing specs")


# What varies between failures of one cause: ids (long tokens with a digit), numbers.
_VARIABLE = re.compile(r"\b(?=[\w-]*\d)[\w-]{8,}\b|(?<![\w/])\d+(?:\.\d+)?")
_SECTION = re.compile(r"§\d+(?:\.\d+)*")
_CERTIFIES = re.compile(r" \[certifies [^\]]*\]$")


def cause_key(reason: str) -> str:
    """A failure reason with its variable parts blanked: failures of one cause share it.
    Contract sections are kept, so failures of different clauses never merge."""
    reason = _CERTIFIES.sub("", reason)  # the spec's own sections: not part of the cause
    sections = [m.span() for m in _SECTION.finditer(reason)]
    out, last = [], 0
    for match in _VARIABLE.finditer(reason):
        if any(start <= match.start() < end for start, end in sections):
            continue
        out += [reason[last:match.start()], "…"]
        last = match.end()
    out.append(reason[last:])
    return " ".join("".join(out).split())


def root_causes(results: Sequence[Result]) -> list[RootCause]:
    """Failures and errors grouped by cause (normalised reason line), most tests first:
    one missing field that fails 64 specs is one line here, not 64."""
    groups: dict[str, list[Result]] = defaultdict(list)
    for result in results:
        if result["outcome"] in ("failed", "error"):
            reason = result["reason"] or f"{result['outcome']} with no message"
            groups[cause_key(reason)].append({**result, "reason": reason})
    ranked = sorted(groups.values(), key=lambda members: (-len(members), members[0]["nodeid"]))
    causes: list[RootCause] = []
    for members in ranked:
        first = members[0]
        contract = sorted({c for m in members for c in m["contract"]})
        causes.append({"cause": first["reason"] or "", "tests": len(members),
                       "reason_code": first["reason_code"], "action": first["action"],
                       "contract": contract, "examples": [m["nodeid"] for m in members[:3]]})
    return causes


def build_report(events: Sequence[Mapping[str, Any]]) -> Report:
    """The whole report document from the event log."""
    start = next((e for e in events if e.get("event") == "session_start"), {})
    finish = next((e for e in events if e.get("event") == "session_finish"), {})
    collected = next((e["count"] for e in events if e.get("event") == "collected"), None)
    results = build_results(events)
    target = finish.get("target", {})
    view = conformance(results, target.get("capabilities", []))
    return {
        "schema": REPORT_SCHEMA,
        "verdict": build_verdict(target, view, results),
        "run": {"id": start.get("run_id"), "started": start.get("ts"),
                "finished": finish.get("ts"), "duration_s": finish.get("duration_s"),
                "exit_status": finish.get("exit_status"), "strict": start.get("strict", False),
                "workers": start.get("workers", 0)},
        "environment": {**finish.get("environment", {}), "settings": start.get("settings", []),
                        "target": finish.get("target", {})},
        "summary": summarize(results, collected),
        "strict_violations": finish.get("strict_violations", []),
        "root_causes": root_causes(results),
        "results": results,
        "conformance": view,
        "coverage": coverage(results),
        "advisories": [Advisory(nodeid=r["nodeid"], advice=text)
                       for r in results for text in r.get("advisories", [])],
        "next_actions": next_actions(results),
        # The session's finish names the failures to re-run; a log cut short (a crashed
        # controller) still has the start's command for the whole run.
        "rerun": finish.get("rerun") or start.get("rerun", {}),
        "run_failures": finish.get("run_failures", []),
    }
