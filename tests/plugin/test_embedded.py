"""The suite against the embedded stack, as a user runs it: `pytest -n 2`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for its (gone) parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_the_trace_workflow_spec_passes_on_the_embedded_stack_and_cleans_up(
        pytester: pytest.Pytester) -> None:
    basetemp = pytester.path / "bt"
    result = pytester.runpytest_subprocess(
        str(REPO / "tests" / "e2e" / "test_trace_workflow.py"), "-n", "2",
        f"--basetemp={basetemp}", "-p", "no:cacheprovider", timeout=240)
    outcomes = result.parseoutcomes()
    assert result.ret == 0, result.stdout.str()[-3000:]
    assert outcomes.get("skipped", 0) == 0 and outcomes.get("failed", 0) == 0
    assert outcomes["passed"] >= 13

    report = json.loads((pytester.path / "reports" / "sidecar-report.json").read_text())
    assert report["summary"]["collected"] == report["summary"]["passed"] == outcomes["passed"]
    assert report["environment"]["target"]["origin"] == "embedded"
    assert all(r["evidence"] for r in report["results"]), "a pass without evidence"

    (target_file,) = basetemp.rglob("stack/target.json")
    target = json.loads(target_file.read_text())
    pid = target["x-reference-stack"]["pid"]
    assert not alive(pid), "the controller did not stop the stack"
    tokens = [t for tenant in target["tenants"].values() for t in tenant["tokens"].values()]
    for path in (pytester.path / "reports").iterdir():
        text = path.read_text()
        assert not [t for t in tokens if t in text], f"{path.name} leaks a token"


SPEC = str(REPO / "tests" / "e2e" / "test_trace_workflow.py")


def test_the_spec_runs_against_a_separately_started_stack(pytester: pytest.Pytester,
                                                          tmp_path: Path) -> None:
    from pytest_sidecar.stack.embedded import EmbeddedStack

    # A declared short TTL lets the 410 spec run against this very target.
    stack = EmbeddedStack(str(tmp_path / "stack"), env={"TRACE_TTL_SECONDS": "4"})
    target_file = stack.ensure_started()
    try:
        result = pytester.runpytest_subprocess(SPEC, "-n", "2", f"--sidecar-target={target_file}",
                                               "-p", "no:cacheprovider", timeout=240)
    finally:
        stack.stop()
    assert result.ret == 0, result.stdout.str()[-3000:]
    outcomes = result.parseoutcomes()
    assert outcomes.get("skipped", 0) == 0 and outcomes["passed"] >= 13
    report = json.loads((pytester.path / "reports" / "sidecar-report.json").read_text())
    assert report["environment"]["target"]["origin"] == f"file {target_file}"
    assert "short_ttl" in report["environment"]["target"]["capabilities"]


def test_an_unreachable_url_passes_nothing_and_fails_under_strict(
        pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(SPEC, "--sidecar-url=http://127.0.0.1:9",
                                           "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) == 0 and outcomes["skipped"] >= 13
    report = json.loads((pytester.path / "reports" / "sidecar-report.json").read_text())
    reasons = {r["reason"] for r in report["results"]}
    assert len(reasons) == 1 and "\n" not in next(iter(reasons))
    assert {r["reason_code"] for r in report["results"]} == {"TARGET_UNREACHABLE"}
    strict = pytester.runpytest_subprocess(SPEC, "--sidecar-url=http://127.0.0.1:9",
                                           "--sidecar-strict", "-p", "no:cacheprovider")
    assert strict.ret != 0 and strict.parseoutcomes().get("passed", 0) == 0


def test_a_stack_that_cannot_start_fails_every_spec_with_its_reason(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_MODE", "bogus")  # the embedded stack reads its environment
    result = pytester.runpytest_subprocess(SPEC, "-n", "2", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) == 0 and outcomes.get("skipped", 0) == 0
    assert outcomes["errors"] >= 13
    result.stdout.fnmatch_lines(["*STACK_FAILED: the stack exited with status 2: sidecar-stack: "
                                 "error: AUTH_MODE='bogus': valid: static, none*"])
