"""The suite against the embedded stack, as a user runs it: `pytest -n 2`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for its (gone) parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_the_whole_suite_passes_on_the_embedded_stack_and_cleans_up(
        pytester: pytest.Pytester) -> None:
    """README command 1 in miniature: every spec, -n 2, 0 failures and 0 skips."""
    basetemp = pytester.path / "bt"
    result = pytester.runpytest_subprocess(
        str(REPO / "tests" / "e2e"), "-n", "2", f"--basetemp={basetemp}",
        "-p", "no:cacheprovider", timeout=300)
    outcomes = result.parseoutcomes()
    assert result.ret == 0, result.stdout.str()[-3000:]
    assert outcomes.get("skipped", 0) == 0 and outcomes.get("failed", 0) == 0
    assert outcomes["passed"] >= 100

    report = json.loads((pytester.path / "reports" / "latest" / "sidecar-report.json").read_text())
    assert report["summary"]["collected"] == report["summary"]["passed"] == outcomes["passed"]
    assert report["environment"]["target"]["origin"] == "embedded"
    assert all(r["evidence"] for r in report["results"]), "a pass without evidence"

    (target_file,) = basetemp.rglob("stack/target.json")
    target = json.loads(target_file.read_text())
    pid = target["x-reference-stack"]["pid"]
    assert not alive(pid), "the controller did not stop the stack"
    tokens = [t for tenant in target["tenants"].values() for t in tenant["tokens"].values()]
    for path in (pytester.path / "reports" / "latest").iterdir():
        text = path.read_text()
        assert not [t for t in tokens if t in text], f"{path.name} leaks a token"


SPEC = str(REPO / "tests" / "e2e" / "test_trace_workflow.py")


def test_the_spec_runs_against_a_separately_started_stack(pytester: pytest.Pytester,
                                                          tmp_path: Path) -> None:
    from pytest_sidecar.embedded import EmbeddedStack

    # A declared short TTL lets the 410 spec run against this very target.
    stack = EmbeddedStack(str(tmp_path / "stack"), env={"TRACE_TTL_SECONDS": "4",
                                                        "SSE_KEEPALIVE_SECONDS": "1"})
    target_file = stack.ensure_started()
    try:
        result = pytester.runpytest_subprocess(SPEC, "-n", "2", f"--sidecar-target={target_file}",
                                               "-p", "no:cacheprovider", timeout=240)
    finally:
        stack.stop()
    assert result.ret == 0, result.stdout.str()[-3000:]
    outcomes = result.parseoutcomes()
    assert outcomes.get("skipped", 0) == 0 and outcomes["passed"] >= 13
    report = json.loads((pytester.path / "reports" / "latest" / "sidecar-report.json").read_text())
    assert report["environment"]["target"]["origin"] == f"file {target_file}"
    assert "short_ttl" in report["environment"]["target"]["capabilities"]


def test_an_unreachable_url_passes_nothing_and_fails_under_strict(
        pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(SPEC, "--sidecar-url=http://127.0.0.1:9",
                                           "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) == 0 and outcomes["skipped"] >= 13
    report = json.loads((pytester.path / "reports" / "latest" / "sidecar-report.json").read_text())
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


SECURITY_SPECS = [str(REPO / "tests" / "e2e" / name) for name in
                  ("test_gateway_rbac.py", "test_security_tenant_isolation.py")]


def open_stack_target(tmp_path: Path, declare_auth: bool) -> tuple[Any, Path]:
    """A stack with AUTH_MODE=none; optionally a target file that claims 'auth' anyway."""
    from pytest_sidecar.embedded import EmbeddedStack

    stack = EmbeddedStack(str(tmp_path / "open"), env={"AUTH_MODE": "none"})
    written = json.loads(Path(stack.ensure_started()).read_text())
    assert "auth" not in written["capabilities"] and "tenants" not in written
    if declare_auth:
        written["capabilities"].append("auth")
        written["tenants"] = {k: {"id": f"t{k}", "tokens": {"write": f"w-{k}-token",
                                                            "read": f"r-{k}-token"}}
                              for k in ("a", "b")}
    path = tmp_path / "open-target.json"
    path.write_text(json.dumps(written))
    return stack, path


def run_security_specs(pytester: pytest.Pytester, tmp_path: Path, declare_auth: bool
                       ) -> tuple[pytest.RunResult, list[dict[str, Any]]]:
    """Run the RBAC and isolation specs against an AUTH_MODE=none stack; returns the run
    and the report's results."""
    stack, target = open_stack_target(tmp_path, declare_auth)
    try:
        result = pytester.runpytest_subprocess(*SECURITY_SPECS, f"--sidecar-target={target}",
                                               "-p", "no:cacheprovider", timeout=240)
    finally:
        stack.stop()
    report = json.loads((pytester.path / "reports" / "latest" / "sidecar-report.json").read_text())
    return result, report["results"]


def test_auth_off_and_undeclared_skips_the_specs_that_judge_refusals(
        pytester: pytest.Pytester, tmp_path: Path) -> None:
    result, results = run_security_specs(pytester, tmp_path, declare_auth=False)
    refusals = [r for r in results if "auth" in r["needs"]]
    assert refusals and {r["outcome"] for r in refusals} == {"skipped"}
    assert {r["reason_code"] for r in refusals} == {"NOT_DECLARED"}
    # What needs no token is judged all the same: the open routes let anyone in.
    assert [r for r in results if r["outcome"] == "passed"]
    assert result.parseoutcomes().get("failed", 0) == 0


def test_auth_declared_but_off_fails_the_refusal_specs_and_judges_the_rest(
        pytester: pytest.Pytester, tmp_path: Path) -> None:
    """A failed 'auth' probe fails the specs of that capability and no others: the
    allowed calls are judged (and pass), and isolation is judged on its own merits (the
    gateway, taking no token, cannot tell tenant B from A: §3's own failure, and §7's for
    the tenant its records name)."""
    result, results = run_security_specs(pytester, tmp_path, declare_auth=True)
    refusals = [r for r in results if "auth" in r["needs"]]
    assert refusals and {r["reason_code"] for r in refusals} == {"DECLARED_BUT_MISSING"}
    result.stdout.fnmatch_lines(["*DECLARED_BUT_MISSING: auth: declares 'auth' but a chat "
                                 "without a token got 200, not 401*"])
    others = [r for r in results if "auth" not in r["needs"]]
    assert not [r for r in others if r["reason_code"] == "DECLARED_BUT_MISSING"]
    assert [r for r in others if r["outcome"] == "passed"], "allowed calls were not judged"
    isolation = [r for r in others if "tenant_isolation" in r["nodeid"]
                 and r["outcome"] in ("failed", "error")]
    assert isolation and all(any(section in (r["reason"] or "") for section in ("§3", "§7"))
                             for r in isolation)


REDACTION_META = '''
import logging

def test_assert_leaks_real_tokens(tenants):
    tokens = [t.tokens.write for t in tenants.values()] + [t.tokens.read for t in tenants.values()]
    print("captured:", tokens)
    logging.getLogger("meta").error("log: Authorization: Bearer %s", tokens[0])
    assert tokens == [], f"tokens were {tokens}"
'''


def test_real_stack_tokens_never_reach_any_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_meta=REDACTION_META)
    basetemp = pytester.path / "bt"
    result = pytester.runpytest_subprocess(
        "-n", "2", f"--basetemp={basetemp}", "--junitxml=junit.xml", "--html=report.html",
        "--self-contained-html", "-rA", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    (target_file,) = basetemp.rglob("stack/target.json")
    target = json.loads(target_file.read_text())
    tokens = [t for tenant in target["tenants"].values() for t in tenant["tokens"].values()]
    artifacts = [pytester.path / "junit.xml", pytester.path / "report.html",
                 *(pytester.path / "reports" / "latest").iterdir()]
    texts = {p.name: p.read_text() for p in artifacts}
    texts["terminal"] = result.stdout.str() + result.stderr.str()
    for name, text in texts.items():
        assert not [t for t in tokens if t in text], f"{name} leaks a real token"
    assert "[REDACTED]" in texts["junit.xml"] and "[REDACTED]" in texts["terminal"]


def test_the_fuzz_spec_skips_typed_without_schemathesis(
        pytester: pytest.Pytester, hide_package: Callable[[str], None]) -> None:
    hide_package("schemathesis")
    result = pytester.runpytest_subprocess(
        str(REPO / "tests" / "e2e" / "test_contract_fuzz.py"), "-p", "no:schemathesis",
        "-p", "no:cacheprovider", "-k", "conforms", "-rs", timeout=120)
    outcomes = result.parseoutcomes()
    from tests.e2e.test_contract_fuzz import OPERATIONS  # one spec per documented operation

    assert outcomes.get("skipped", 0) == len(OPERATIONS) and outcomes.get("passed", 0) == 0, \
        outcomes
    # ([schemathesis] would be a character class to fnmatch: stop before it.)
    result.stdout.fnmatch_lines(["*TOOL_MISSING: schemathesis is not installed; action: pip "
                                 "install 'pytest-sidecar*"])
