"""The report model: outcome folding, counts, actions, Markdown layout, re-run masking."""

from __future__ import annotations

from typing import Any, cast

import pytest

from pytest_sidecar.reporting.markdown import render_markdown
from pytest_sidecar.reporting.model import build_report, fold_outcome
from pytest_sidecar.reporting.rerun import mask_args, rerun_commands
from pytest_sidecar.reporting.types import Result


def phase(when: str, outcome: str, **extra: Any) -> dict[str, Any]:
    return {"when": when, "outcome": outcome, **extra}


@pytest.mark.parametrize("phases,expected", [
    ([phase("setup", "passed"), phase("call", "passed"), phase("teardown", "passed")], "passed"),
    ([phase("setup", "passed"), phase("call", "failed"), phase("teardown", "failed")], "failed"),
    ([phase("setup", "failed"), phase("teardown", "passed")], "error"),
    ([phase("setup", "skipped"), phase("teardown", "passed")], "skipped"),
    ([phase("setup", "passed"), phase("call", "passed"), phase("teardown", "failed")], "error"),
    ([phase("setup", "passed"), phase("call", "skipped", wasxfail="bug")], "xfailed"),
    ([phase("setup", "passed"), phase("call", "passed", wasxfail="bug")], "xpassed"),
    ([phase("???", "failed")], "failed"),  # xdist: the worker crashed
])
def test_fold_outcome(phases: list[dict[str, Any]], expected: str) -> None:
    assert fold_outcome({p["when"]: p for p in phases}) == expected


def events() -> list[dict[str, Any]]:
    def ev(nodeid: str, when: str, outcome: str, **extra: Any) -> dict[str, Any]:
        return {"event": "phase", "nodeid": nodeid, "when": when, "outcome": outcome,
                "duration": 0.01, "profile": "explain", "markers": ["needs"],
                "contract": ["§2.2"], **extra}
    return [
        {"event": "session_start", "run_id": "r1", "ts": "t0", "settings": [],
         "rerun": {"all": "pytest"}},
        {"event": "collected", "count": 3},
        ev("t.py::ok", "setup", "passed"),
        ev("t.py::ok", "call", "passed", evidence=[{"trace_id": "abc"}]),
        ev("t.py::ok", "teardown", "passed"),
        ev("t.py::skip", "setup", "skipped", reason="NOT_DECLARED: no auth; action: enable it",
           reason_code="NOT_DECLARED", action="enable it"),
        ev("t.py::skip", "teardown", "passed"),
        ev("t.py::bad", "setup", "passed"),
        ev("t.py::bad", "call", "failed", reason="AssertionError: boom", longrepr="trace"),
        ev("t.py::bad", "teardown", "passed"),
        {"event": "session_finish", "ts": "t1", "duration_s": 1.0, "exit_status": 1,
         "target": {"url": "http://x", "origin": "url", "capabilities": ["chat", "explain"]},
         "environment": {"python": "3.11", "platform": "linux", "packages": {}, "tools": {}}},
    ]


def test_report_counts_agree_with_the_tests_and_collect_actions() -> None:
    report = build_report(events())
    assert report["summary"] == {"collected": 3, "total": 3, "passed": 1, "failed": 1,
                                 "error": 0, "skipped": 1, "xfailed": 0, "xpassed": 0}
    by_id = {r["nodeid"]: r for r in report["results"]}
    assert by_id["t.py::ok"]["evidence"] == [{"trace_id": "abc"}]
    assert by_id["t.py::skip"]["reason_code"] == "NOT_DECLARED"
    # A failure's fix comes first (it makes the run red), then the skip's typed action.
    assert report["next_actions"] == [
        {"action": "fix the target to meet §2.2 of docs/contract.md, then re-run the "
                   "failing specs", "tests": 1, "examples": ["t.py::bad"], "contract": ["§2.2"]},
        {"action": "enable it", "tests": 1, "examples": ["t.py::skip"], "contract": ["§2.2"]}]
    explain = report["conformance"]["explain"]
    assert explain["tests"] == 3
    # Declared is not passed: explain is untested here (no spec recorded needing it).
    assert explain["capabilities"]["explain"] == "untested"
    assert explain["capabilities"]["cancel"] == "not declared"


def test_markdown_opens_with_the_verdict_then_follows_the_seed_layout() -> None:
    text = render_markdown(build_report(events()))
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    # The verdict, root causes and next actions first; then the details.
    assert headings == ["## Verdict", "## Root causes", "## Next actions", "## Environment",
                        "## Summary", "## Results table", "## Conformance by profile",
                        "## Contract coverage", "## Detailed results", "## Re-run command"]
    assert "- Target http://x (url); declared: chat, explain" in text
    assert "explain ✗ not conformant" in text and "resilience – not declared" in text
    assert ("| 1 tests: t.py::skip | SKIP | 20 | NOT_DECLARED: no auth; action: enable it |"
            in text)
    assert "  - trace_id: abc" in text


def test_identical_skips_collapse_into_one_row_with_a_count() -> None:
    logged = events()
    skip = [e for e in logged if e.get("nodeid") == "t.py::skip"]
    for n in range(40):  # a chat-only target skips most of the suite for one reason
        logged[-1:-1] = [{**e, "nodeid": f"t.py::skip_{n}"} for e in skip]
    text = render_markdown(build_report(logged))
    assert "| 41 tests: t.py::skip, t.py::skip_0, t.py::skip_1 and 38 more | SKIP |" in text
    assert text.count("NOT_DECLARED: no auth") == 2  # one table row, one detail entry
    assert "### Skipped: 41 tests" in text


def test_slo_verdicts_open_the_report_with_their_figures() -> None:
    from pytest_sidecar.reporting.verdict import slo_line

    logged = events()
    for event in logged:
        if event.get("nodeid") == "t.py::ok":
            event["markers"] = ["slo"]  # only the slo specs' verdicts are SLO verdicts
    call = next(e for e in logged if e.get("nodeid") == "t.py::ok" and e["when"] == "call")
    call["evidence"] = [{"verdict": {"name": "explanation p95 (sentence)", "outcome": "PASS",
                                     "measured": 0.283, "threshold": 2.0, "samples": 143}}]
    verdict = build_report(logged)["verdict"]
    assert [slo_line(s) for s in verdict["slos"]] == [
        "✓ explanation p95 (sentence): 0.283 ≤ 2 (143 samples)"]
    assert slo_line({"name": "chat error rate", "outcome": "FAIL", "measured": 0.02,
                     "threshold": 0.001, "samples": 400}) == (
        "✗ chat error rate: 0.02 > 0.001 (400 samples)")
    assert slo_line({"name": "p95 (token)", "outcome": "INSUFFICIENT_DATA", "measured": None,
                     "threshold": 8.0, "samples": 3, "detail": "need 20"}) == (
        "? p95 (token): INSUFFICIENT_DATA (3 samples): need 20")


def test_the_llm_figures_follow_the_verdict_with_their_definitions() -> None:
    logged = events()
    for event in logged:
        if event.get("nodeid") == "t.py::ok":
            event["markers"] = ["slo"]
    call = next(e for e in logged if e.get("nodeid") == "t.py::ok" and e["when"] == "call")
    table = [{"lane": lane, "status": "2xx: 30", "ok": 30, "p50 ms": 10.0, "p90 ms": p90,
              "p95 ms": p90, "p99 ms": p90 * 2, "max ms": p90 * 3}
             for lane, p90 in (("chat", 9.0), ("ttft", 41.0), ("itl", 2.5), ("tpot", 3.0),
                               ("e2e", 90.0))]
    call["evidence"] = [{"table": table}, {
        "streams": {"streams": 30, "output_tokens": 600, "output_tokens_per_s": 60.0,
                    "request_tokens_per_s": 6.5, "token_count_source": "usage chunk",
                    "limits_ms": {"ttft": 100}, "good": 27, "goodput_rps": 2.7},
        "formulas": {"itl": "gap between consecutive content chunks", "goodput_rps": "g"}}]
    report = build_report(logged)
    llm = report["verdict"]["llm"]
    assert [lane["lane"] for lane in llm["lanes"]] == ["ttft", "itl", "tpot", "e2e"]
    markdown = render_markdown(report)
    assert ("- LLM 30 streamed chats: TTFT p90 41 ms · ITL p90 2.5 ms · TPOT p90 3 ms · "
            "E2E p90 90 ms · 60 output tokens/s · goodput 2.7 req/s") in markdown
    assert "| ITL | 30 | 10 | 2.5 | 5 | gap between consecutive content chunks |" in markdown
    assert "- limits: ttft ≤ 100 ms (27 of 30 within)" in markdown
    assert markdown.index("## LLM latency") < markdown.index("## Environment")


def test_a_run_without_streams_has_no_llm_section() -> None:
    report = build_report(events())
    assert report["verdict"]["llm"] is None
    assert "LLM" not in render_markdown(report)


def test_rerun_commands_never_carry_secret_values() -> None:
    args = ["tests/e2e", "--sidecar-token-write", "sct_secret", "--sidecar-token-read=s2",
            "-n", "2"]
    masked = " ".join(mask_args(args))
    assert "sct_secret" not in masked and "s2" not in masked.replace("-n 2", "")
    assert '--sidecar-token-write "$SIDECAR_TOKEN_WRITE"' in masked
    commands = rerun_commands(args, ["tests/e2e/test_x.py::test_y"])
    assert commands["failed"].startswith("pytest tests/e2e/test_x.py::test_y ")
    assert "-n 2" in commands["failed"]


def test_only_positively_selected_marker_groups_count_for_strict_mode() -> None:
    from pytest_sidecar.outcomes import selected_groups

    assert selected_groups("slo") == ["slo"]
    assert selected_groups("slo and not disruptive") == ["slo"]
    assert selected_groups("not slo") == []
    assert selected_groups("(load or chaos) and not fuzz") == ["load", "chaos"]
    assert selected_groups("") == []


def test_figures_become_files_beside_the_report_and_stale_ones_go(tmp_path: Any) -> None:
    """An SVG figure is written under figures/, linked from the Markdown, kept out of the
    JSON, redacted like everything else on its way through the event log; a later run's
    report leaves no old figure."""
    from xml.etree import ElementTree

    from pytest_sidecar.reporting.events import EventLog, read_events
    from pytest_sidecar.reporting.plot import latency_histogram_svg
    from pytest_sidecar.reporting.render import write_reports
    from pytest_sidecar.vocabulary.redaction import Redactor

    svg = latency_histogram_svg("latency for sct_secret-token-0123456789",
                                {"sentence": [(150.0, 40), (900.0, 2)], "token": []},
                                {"SLO sentence 2 s": 2000.0})
    log = EventLog(str(tmp_path / "events.jsonl"), Redactor(["sct_secret-token-0123456789"]))
    for event in events():
        if event.get("nodeid") == "t.py::ok" and event["when"] == "call":
            event["figures"] = [{"name": "latency", "svg": svg}]
        log.write(event)
    log.close()
    logged = read_events(log.path)
    (tmp_path / "events.jsonl").unlink()  # the directory holds the reports alone below
    write_reports(build_report(logged), str(tmp_path))
    (figure,) = (tmp_path / "figures").iterdir()
    text = figure.read_text()
    assert "sct_secret" not in text and "[REDACTED]" in text
    assert ElementTree.fromstring(text).tag.endswith("svg")  # well-formed
    assert f"![latency](figures/{figure.name})" in (tmp_path / "sidecar-report.md").read_text()
    written = (tmp_path / "sidecar-report.json").read_text()
    assert "<svg" not in written and f"figures/{figure.name}" in written
    write_reports(build_report(events()), str(tmp_path))
    assert not (tmp_path / "figures").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_histogram_without_samples_says_so() -> None:
    from pytest_sidecar.reporting.plot import latency_histogram_svg

    assert "no samples" in latency_histogram_svg("empty", {"sentence": []}, {})


def test_failures_of_one_cause_are_grouped_and_ranked() -> None:
    from pytest_sidecar.reporting.model import cause_key, root_causes

    def failed(nodeid: str, reason: str, contract: list[str]) -> Result:
        # partial results: root_causes reads only these keys
        return cast(Result, {"nodeid": nodeid, "outcome": "failed", "reason": reason,
                             "reason_code": None, "action": None, "contract": contract})

    missing = ("DECLARED_BUT_MISSING: declared 'explain'; trace {} did not reach a terminal "
               "state within 30s (states seen: queued) (CONTRACT §2.2)")
    results = [failed(f"t::rbac[{i}]", missing.format(f"{i:012x}abc"), ["§3"])
               for i in range(4)]
    results += [failed("t::sse", "AssertionError: §2.5: an event has no id", ["§2.5"]),
                failed("t::cors", "AssertionError: §2.11: origin https://evil.example", []),
                cast(Result, {"nodeid": "t::ok", "outcome": "passed", "reason": None,
                              "contract": []})]
    causes = root_causes(results)
    assert [c["tests"] for c in causes] == [4, 1, 1]
    assert causes[0]["cause"].startswith("DECLARED_BUT_MISSING: declared 'explain'")
    assert causes[0]["examples"] == ["t::rbac[0]", "t::rbac[1]", "t::rbac[2]"]
    # Sections are kept: the same words about different clauses are different causes.
    assert cause_key("AssertionError: §2.5: x") != cause_key("AssertionError: §2.6: x")
    assert cause_key("KeyError: 'explanation_metadata'") == "KeyError: 'explanation_metadata'"
    # The sections a bare failure's spec certifies are appended to its line; one missing
    # field failing specs of several clauses is still one cause.
    assert cause_key("KeyError: 'x' [certifies §3]") == cause_key("KeyError: 'x' [certifies §2.6]")


def test_a_rerun_replaces_the_attempt_before_it() -> None:
    """Attempts are keyed by (nodeid, worker, rerun): pytest-rerunfailures' second attempt
    decides the test's outcome, and the test is still counted once."""
    def ev(when: str, outcome: str, rerun: int) -> dict[str, Any]:
        return {"event": "phase", "nodeid": "t.py::flaky", "when": when, "outcome": outcome,
                "worker": "gw0", "rerun": rerun, "duration": 0.01,
                "reason": "AssertionError: boom" if outcome == "failed" else None}
    logged = [{"event": "collected", "count": 1},
              ev("setup", "passed", 0), ev("call", "failed", 0), ev("teardown", "passed", 0),
              ev("setup", "passed", 1), ev("call", "passed", 1), ev("teardown", "passed", 1)]
    report = build_report(logged)
    assert [(r["nodeid"], r["outcome"]) for r in report["results"]] == [("t.py::flaky",
                                                                          "passed")]
    assert report["summary"]["total"] == 1 and report["root_causes"] == []


def test_many_failures_rerun_by_lf_only_when_the_cache_was_kept() -> None:
    failed = [f"t.py::test_{n}" for n in range(25)]
    assert rerun_commands(["tests"], failed)["failed"].startswith("pytest --lf")
    listed = rerun_commands(["tests", "-p", "no:cacheprovider"], failed)["failed"]
    assert "--lf" not in listed and all(nodeid in listed for nodeid in failed)


def test_results_follow_the_collection_order() -> None:
    logged = events()
    logged[1] = {"event": "collected", "count": 3, "ids": ["t.py::bad", "t.py::skip", "t.py::ok"]}
    assert [r["nodeid"] for r in build_report(logged)["results"]] == [
        "t.py::bad", "t.py::skip", "t.py::ok"]


def test_a_profile_whose_specs_gave_up_is_incomplete_not_conformant() -> None:
    """Too few samples is no pass: a profile with such a skip is not called conformant,
    while a skip for a capability the target does not declare leaves it conformant."""
    logged = events()
    logged[-1:-1] = [
        {"event": "phase", "nodeid": "t.py::slo", "when": "setup", "outcome": "passed",
         "duration": 0.01, "profile": "explain", "markers": ["slo"], "contract": ["§5"]},
        {"event": "phase", "nodeid": "t.py::slo", "when": "call", "outcome": "skipped",
         "duration": 0.01, "profile": "explain", "markers": ["slo"], "contract": ["§5"],
         "reason": "INSUFFICIENT_DATA: 3 samples, need at least 20",
         "reason_code": "INSUFFICIENT_DATA"}]
    for event in logged:  # no failure in the profile: only the give-up can spoil it
        if event.get("nodeid") == "t.py::bad":
            event["profile"] = "core"
    assert build_report(logged)["verdict"]["profiles"]["explain"] == "incomplete"
    assert build_report([e for e in logged if e.get("nodeid") != "t.py::slo"])[
        "verdict"]["profiles"]["explain"] == "conformant"


def test_the_resilience_score_weighs_specs_by_the_nines_of_the_slo_they_protect() -> None:
    """A spec guarding chat success (99.9 %: 3 nines) counts 3, one guarding explanation
    latency (p95: 1.3 nines) 1.3; the interval is over the weights' effective count."""
    from pytest_sidecar.reporting.verdict import resilience_score, slo_weight, verdict_lines

    def result(nodeid: str, outcome: str, clauses: list[str],
               profile: str = "resilience") -> Result:
        # partial results: resilience_score reads only these keys
        return cast(Result, {"nodeid": nodeid, "outcome": outcome, "profile": profile,
                             "clauses": clauses})

    assert slo_weight(["§7/chaos-flags", "§2.1/upstream-errors"]) == pytest.approx(3.0)
    assert slo_weight(["§10/restart"]) == pytest.approx(1.301, abs=1e-3)
    results = [result("a", "passed", ["§2.1/upstream-errors"]),
               result("b", "failed", ["§10/restart"]), result("c", "skipped", []),
               result("d", "passed", [], "core")]
    score = resilience_score(results)
    assert score == {"score": 0.698, "held": 1, "judged": 2, "ci95": [0.156, 0.966],
                     "weighting": "SLO nines"}
    swapped = resilience_score([result("a", "failed", ["§2.1/upstream-errors"]),
                                result("b", "passed", ["§10/restart"])])
    assert swapped is not None and swapped["score"] == pytest.approx(1 - 0.698, abs=1e-3)
    assert resilience_score([result("c", "skipped", [])]) is None
    lines = verdict_lines({"target": {"url": "u", "origin": "o", "declared": []},
                           "profiles": {}, "slos": [], "resilience": score})
    assert lines[-1] == ("Resilience score 0.70 (SLO-weighted): 1 of 2 specs held "
                         "(95 % interval 0.16-0.97)")


def test_a_profile_and_its_capabilities_never_disagree() -> None:
    """One verdict: a capability exercised by another profile's spec makes its own
    profile judged, and a spec failing for its own profile never marks another profile's
    capability failed."""
    from pytest_sidecar.reporting.model import capability_verdicts, conformance
    from pytest_sidecar.reporting.verdict import profile_verdict

    def result(profile: str, outcome: str, needs: list[str]) -> dict[str, Any]:
        return {"nodeid": f"t::{profile}-{outcome}", "profile": profile, "outcome": outcome,
                "needs": needs, "reason_code": None}

    results = [result("observability", "passed", ["readiness_switch", "health"]),
               result("security", "failed", ["chat"])]
    declared = ["chat", "health", "readiness_switch"]
    verdicts = capability_verdicts(results, declared)  # type: ignore[arg-type]
    assert (verdicts["health"], verdicts["chat"]) == ("passed", "passed")
    view = conformance(results, declared)  # type: ignore[arg-type]
    assert profile_verdict(view["core"]) == "conformant"
    assert profile_verdict(view["security"]) == "not conformant"


def test_an_assertions_message_leads_without_its_class_name() -> None:
    from pytest_sidecar.reporting.session import without_assertion_class

    assert without_assertion_class("AssertionError: §3: x was granted") == "§3: x was granted"
    assert without_assertion_class("AssertionError: assert 1 == 2") == \
        "AssertionError: assert 1 == 2"
    assert without_assertion_class("KeyError: 'x'") == "KeyError: 'x'"
