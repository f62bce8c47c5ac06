"""Reports under xdist: counts agree with pytest's, and no token reaches any artifact."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

META_SUITE = '''
import logging
import pytest

def test_passes(sidecar_target, evidence):
    evidence.record(tenants=len(sidecar_target.tenants))

def test_assert_shows_a_token(tenants):
    token = tenants["a"].tokens.write
    assert token == "something else"

def test_prints_and_logs_tokens(tenants):
    print("stdout", tenants["b"].tokens.read, "Authorization: Bearer", tenants["b"].tokens.write)
    logging.getLogger("meta").warning("log %s", tenants["a"].tokens.read)
    raise RuntimeError(f"boom {tenants['a'].tokens.write}")

@pytest.mark.needs("metrics:gateway")
def test_needs_metrics(sidecar_target):
    pass

@pytest.mark.xfail(reason="known", strict=True)
def test_known_bug():
    assert False

@pytest.mark.parametrize("n", range(6))
def test_many(n, evidence):
    evidence.record(n=n)
'''


def artifacts(directory: Path) -> dict[str, str]:
    """Every report-like file the run wrote (the target file is the run's input)."""
    return {str(p.relative_to(directory)): p.read_text(errors="replace")
            for p in directory.rglob("*") if p.is_file() and p.name != "target.json"
            and p.suffix in (".json", ".md", ".jsonl", ".xml", ".html")}


def test_reports_agree_with_pytest_and_hold_no_token_under_xdist(
        pytester: pytest.Pytester, fake_target_factory: Callable[..., Any],
        fake_tokens: dict[str, dict[str, str]]) -> None:
    target = fake_target_factory().write(pytester.path / "target.json", ["chat", "auth"])
    pytester.makepyfile(test_meta=META_SUITE)
    result = pytester.runpytest_subprocess(
        "-n", "2", f"--sidecar-target={target}", "--junitxml=junit.xml",
        "--html=report.html", "--self-contained-html", "-rA", "--log-level=INFO")
    outcomes = result.parseoutcomes()
    assert outcomes == {"passed": 7, "failed": 2, "skipped": 1, "xfailed": 1}, outcomes

    report = json.loads((pytester.path / "reports" / "sidecar-report.json").read_text())
    summary = report["summary"]
    assert summary["collected"] == summary["total"] == 11
    assert {k: summary[k] for k in ("passed", "failed", "skipped", "xfailed")} == outcomes
    assert report["run"]["workers"] == 2
    assert {r["worker"] for r in report["results"]} <= {"gw0", "gw1"}
    skipped = next(r for r in report["results"] if r["outcome"] == "skipped")
    assert skipped["reason_code"] == "NOT_DECLARED" and skipped["contract"] == ["§6"]

    events = (pytester.path / "reports" / "sidecar-events.jsonl").read_text().splitlines()
    # 11 tests x (setup, call, teardown), but a test skipped in setup has no call phase.
    assert sum(json.loads(e)["event"] == "phase" for e in events) == 11 * 3 - 1

    files = artifacts(pytester.path)
    assert {"reports/sidecar-report.json", "reports/sidecar-report.md", "junit.xml",
            "report.html", "reports/sidecar-events.jsonl"} <= set(files)
    secrets = [token for tokens in fake_tokens.values() for token in tokens.values()]
    output = result.stdout.str() + result.stderr.str()
    for name, text in [*files.items(), ("terminal output", output)]:
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{name} leaks {len(leaked)} token(s)"
    assert "[REDACTED]" in files["junit.xml"] and "[REDACTED]" in output
    assert "boom [REDACTED]" in files["reports/sidecar-report.md"]


def test_no_stack_starts_when_no_test_needs_the_target(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("-n", "2", f"--basetemp={pytester.path / 'bt'}")
    result.assert_outcomes(passed=1)
    assert not list((pytester.path / "bt").rglob("target.json")), "a stack was started"


def test_a_crashed_worker_is_a_reported_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import os
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_fine(n):
            pass

        def test_crashes_its_worker():
            os._exit(3)
    """)
    result = pytester.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=4, failed=1)
    report = json.loads((pytester.path / "reports" / "sidecar-report.json").read_text())
    assert report["summary"]["collected"] == report["summary"]["total"] == 5
    crashed = next(r for r in report["results"] if r["outcome"] == "failed")
    assert crashed["nodeid"].endswith("test_crashes_its_worker")
    assert "crashed" in (crashed["reason"] or "")


def test_a_failure_carries_the_embedded_stack_log(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        def test_fails_against_the_stack(sidecar_target):
            assert sidecar_target.url == "http://elsewhere"
    """)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*sidecar stack log (last 40 lines)*",
                                 "*sidecar-stack ready: gateway http://127.0.0.1:*"])


def test_concurrent_runs_in_one_directory_keep_their_own_event_logs(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile("import time\n\ndef test_slow():\n    time.sleep(1)\n")
    first = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider"],
                             cwd=pytester.path, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    second = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    first.communicate(timeout=60)
    second.assert_outcomes(passed=1)
    assert first.returncode == 0
    reports = pytester.path / "reports"
    assert sorted(p.name for p in reports.iterdir()) == [
        "sidecar-events.jsonl", "sidecar-report.json", "sidecar-report.md"]
    assert json.loads((reports / "sidecar-report.json").read_text())["summary"]["passed"] == 1
