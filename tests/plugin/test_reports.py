"""Reports under xdist: counts agree with pytest's, and no token reaches any artifact."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

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
            and p.suffix in (".json", ".md", ".jsonl", ".xml", ".html", ".yaml")}


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

    report = json.loads((pytester.path / "reports" / "latest" / "sidecar-report.json").read_text())
    summary = report["summary"]
    assert summary["collected"] == summary["total"] == 11
    assert {k: summary[k] for k in ("passed", "failed", "skipped", "xfailed")} == outcomes
    assert report["run"]["workers"] == 2
    assert {r["worker"] for r in report["results"]} <= {"gw0", "gw1"}
    # A failure whose text was redacted keeps its own message as the reason, not the
    # traceback's first line (the repr of a fixture argument).
    by_name = {r["name"]: r for r in report["results"]}
    assert by_name["test_assert_shows_a_token"]["reason"].startswith(
        "AssertionError: assert '[REDACTED]' == 'something else'")
    assert by_name["test_prints_and_logs_tokens"]["reason"].startswith(
        "RuntimeError: boom [REDACTED]")
    skipped = next(r for r in report["results"] if r["outcome"] == "skipped")
    assert skipped["reason_code"] == "NOT_DECLARED" and skipped["contract"] == ["§6"]

    events = (pytester.path / "reports" / "latest" / "sidecar-events.jsonl"
              ).read_text().splitlines()
    # 11 tests x (setup, call, teardown), but a test skipped in setup has no call phase.
    assert sum(json.loads(e)["event"] == "phase" for e in events) == 11 * 3 - 1

    files = artifacts(pytester.path)
    run = f"reports/runs/{(pytester.path / 'reports' / 'latest').resolve().name}"
    files = {name.replace(run, "reports/latest"): text for name, text in files.items()}
    assert {"reports/latest/sidecar-report.json", "reports/latest/sidecar-report.md",
            "junit.xml", "report.html", "reports/latest/sidecar-events.jsonl",
            "reports/latest/junit.xml", "reports/latest/report.html"} <= set(files)
    secrets = [token for tokens in fake_tokens.values() for token in tokens.values()]
    output = result.stdout.str() + result.stderr.str()
    for name, text in [*files.items(), ("terminal output", output)]:
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{name} leaks {len(leaked)} token(s)"
    assert "[REDACTED]" in files["junit.xml"] and "[REDACTED]" in output
    assert "boom [REDACTED]" in files["reports/latest/sidecar-report.md"]
    # Results in collection order, whatever order the workers finished in.
    names = [r["name"] for r in report["results"]]
    assert names[:5] == ["test_passes", "test_assert_shows_a_token",
                         "test_prints_and_logs_tokens", "test_needs_metrics", "test_known_bug"]
    assert names[5:] == [f"test_many[{n}]" for n in range(6)]
    # JUnit properties are JSON a pipeline can parse, not a Python repr.
    from xml.etree import ElementTree

    properties = [p.get("value") or "" for p in
                  ElementTree.fromstring(files["junit.xml"]).iter("property")
                  if (p.get("name") or "").startswith("sidecar_")]
    assert properties and all(isinstance(json.loads(v), (dict, list, str)) for v in properties)
    # The run directory's own junit.xml: one testcase per spec, outcomes as pytest's.
    ours = ElementTree.fromstring(files["reports/latest/junit.xml"])
    cases = list(ours.iter("testcase"))
    assert len(cases) == 11
    assert sum(1 for c in cases if c.find("failure") is not None) == 2
    assert sum(1 for c in cases if c.find("skipped") is not None) == 1
    # conformance-report.yaml: Gateway API's ConformanceReport shape, schema-valid.
    conformance = yaml.safe_load(files["reports/latest/conformance-report.yaml"])
    schema = json.loads((resources.files("pytest_sidecar.contracts")
                         / "conformance_report.schema.json").read_text())
    jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.FormatChecker()).validate(conformance)
    totals: Counter[str] = Counter()
    for profile in conformance["profiles"]:
        for level in ("core", "extended"):
            totals.update(profile.get(level, {}).get("statistics", {}))
    # 7 passed and 1 xfailed pass, 2 failed; the NOT_DECLARED skip is not attempted.
    assert dict(totals) == {"Passed": 8, "Failed": 2, "Skipped": 0}


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
    report = json.loads((pytester.path / "reports" / "latest" / "sidecar-report.json").read_text())
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


def test_concurrent_runs_write_their_own_directories(pytester: pytest.Pytester) -> None:
    """Two runs at once under one report root: each writes its own run directory, whole,
    and `latest` points at one of them (the one that finished last)."""
    pytester.makepyfile("import time\n\ndef test_slow():\n    time.sleep(1)\n")
    first = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider"],
                             cwd=pytester.path, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    second = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    first.communicate(timeout=60)
    second.assert_outcomes(passed=1)
    assert first.returncode == 0
    reports = pytester.path / "reports"
    assert sorted(p.name for p in reports.iterdir()) == ["latest", "runs"]
    runs = sorted((reports / "runs").iterdir())
    assert len(runs) == 2 and len({r.name.split("-")[1] for r in runs}) == 2
    for run in runs:
        assert sorted(p.name for p in run.iterdir()) == [
            "conformance-report.yaml", "contract.md", "junit.xml", "sidecar-events.jsonl",
            "sidecar-report.json", "sidecar-report.md"]
        report = json.loads((run / "sidecar-report.json").read_text())
        assert report["summary"]["passed"] == 1 and run.name.endswith(report["run"]["id"])
    assert (reports / "latest").resolve() in runs


def test_old_runs_are_pruned_to_the_kept_count(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_one():\n    pass\n")
    for _ in range(3):
        pytester.runpytest("-p", "no:cacheprovider", "--sidecar-keep-runs=2"
                           ).assert_outcomes(passed=1)
    runs = sorted((pytester.path / "reports" / "runs").iterdir())
    assert len(runs) == 2 and (pytester.path / "reports" / "latest").resolve() == runs[-1]


RERUN_SUITE = """
import pytest

@pytest.mark.parametrize("n", range(3))
def test_fails(n):
    assert n < 0

def test_passes():
    pass
"""


@pytest.mark.parametrize("disabled_cache", [True, False])
def test_the_rerun_commands_work_as_printed(pytester: pytest.Pytester,
                                           disabled_cache: bool) -> None:
    """The report's re-run commands, run as printed, run all the tests again, or just the
    failures; with the cache disabled, never an --lf that has nothing to read."""
    import shlex

    pytester.makepyfile(test_rerun=RERUN_SUITE)
    first = ["-p", "no:cacheprovider"] if disabled_cache else []
    pytester.runpytest_subprocess(*first).assert_outcomes(passed=1, failed=3)
    rerun = json.loads((pytester.path / "reports" / "latest" / "sidecar-report.json"
                        ).read_text())["rerun"]
    assert "--lf" not in rerun["failed"]
    for name, outcome in (("failed", {"failed": 3}), ("all", {"passed": 1, "failed": 3})):
        words = shlex.split(rerun[name])
        assert words[0] == "pytest"
        again = subprocess.run([sys.executable, "-m", "pytest", *words[1:]], cwd=pytester.path,
                               capture_output=True, text=True, timeout=120)
        summary = again.stdout.strip().splitlines()[-1]
        for key, count in outcome.items():
            assert f"{count} {key}" in summary, (name, summary)
        if name == "failed":
            assert "passed" not in summary
