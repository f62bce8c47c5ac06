"""needs -> skip/fail, strict mode, evidence, unreachable targets (pytester, in process)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

SPEC = """
import pytest

@pytest.mark.needs({needs})
def test_spec(sidecar_target, evidence):
    evidence.record(url=sidecar_target.url)
"""


def run(pytester: pytest.Pytester, target: Any, capabilities: list[str], needs: str,
        *args: str) -> pytest.RunResult:
    path = target.write(pytester.path / "target.json", capabilities)
    pytester.makepyfile(test_spec=SPEC.format(needs=needs))
    return pytester.runpytest(f"--sidecar-target={path}", "-rsfE", *args)


def report(pytester: pytest.Pytester) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (pytester.path / "reports" / "latest" / "sidecar-report.json").read_text())
    return loaded


def test_not_declared_is_a_typed_skip_with_action_and_contract(
        pytester: pytest.Pytester, fake_target_factory: Callable[..., Any]) -> None:
    result = run(pytester, fake_target_factory(), ["chat"], '"auth"')
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED * NOT_DECLARED: the target does not declare 'auth'; "
                                 "action: set AUTH_MODE=static*(contract §3)"])
    only = report(pytester)["results"][0]
    assert (only["reason_code"], only["action"]) == ("NOT_DECLARED",
                                                     "set AUTH_MODE=static, give tokens and "
                                                     "declare 'auth'")


def test_declared_but_failing_its_probe_is_a_failure(
        pytester: pytest.Pytester, fake_target_factory: Callable[..., Any]) -> None:
    result = run(pytester, fake_target_factory(require_auth=False), ["chat", "auth"], '"auth"')
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*DECLARED_BUT_MISSING: auth: declares 'auth' but a chat "
                                 "without a token got 200, not 401*"])


def test_declared_and_probed_runs_and_records_evidence(
        pytester: pytest.Pytester, fake_target_factory: Callable[..., Any]) -> None:
    target = fake_target_factory(require_auth=True)
    result = run(pytester, target, ["chat", "auth"], '"auth", "tenants:2"')
    result.assert_outcomes(passed=1)
    assert report(pytester)["results"][0]["evidence"] == [{"url": target.url}]


def test_an_unknown_capability_in_a_marker_fails_the_test(
        pytester: pytest.Pytester, fake_target_factory: Callable[..., Any]) -> None:
    result = run(pytester, fake_target_factory(), ["chat"], '"teleport"')
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*needs('teleport'): unknown capability; known: chat*"])


def test_strict_turns_skips_into_failures(
        pytester: pytest.Pytester, fake_target_factory: Callable[..., Any]) -> None:
    result = run(pytester, fake_target_factory(), ["chat"], '"auth"', "--sidecar-strict")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*STRICT: NOT_DECLARED: the target does not declare 'auth'*"])


def test_strict_fails_a_selected_marker_group_that_ran_nothing(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.slo
        def test_slo():
            pytest.skip("INSUFFICIENT_DATA: p95: 0 samples, need at least 20")

        def test_other():
            pass
    """)
    relaxed = pytester.runpytest("-m", "slo")
    assert relaxed.ret == pytest.ExitCode.OK
    strict = pytester.runpytest("-m", "slo", "--sidecar-strict")
    assert strict.ret == pytest.ExitCode.TESTS_FAILED
    strict.stdout.fnmatch_lines(["strict: marker group 'slo' was selected but executed nothing"])
    assert report(pytester)["strict_violations"] == [
        "strict: no spec executed",
        "strict: marker group 'slo' was selected but executed nothing"]


def test_the_capacity_sweep_runs_only_when_m_names_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.capacity
        def test_sweep(evidence):
            evidence.record(peak_rate=50)

        def test_other(evidence):
            evidence.record(ran=True)
    """)
    plain = pytester.runpytest()
    plain.assert_outcomes(passed=1, deselected=1)
    named = pytester.runpytest("-m", "capacity")
    named.assert_outcomes(passed=1, deselected=1)
    assert report(pytester)["results"][0]["nodeid"].endswith("test_sweep")
    pytester.runpytest("-m", "capacity or not capacity").assert_outcomes(passed=2)
    named_file = pytester.runpytest("test_the_capacity_sweep_runs_only_when_m_names_it.py")
    named_file.assert_outcomes(passed=2)  # its file on the command line: asked for
    spelled = pytester.runpytest("./test_the_capacity_sweep_runs_only_when_m_names_it.py"
                                 "::test_sweep")
    spelled.assert_outcomes(passed=1)  # a node id, however the path is spelled
    pytester.runpytest(".").assert_outcomes(passed=1, deselected=1)  # a directory: not


def test_a_pass_without_evidence_is_a_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_lazy(evidence):\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*NO_EVIDENCE: the test used `evidence` but recorded none*"])


def test_an_unreachable_target_skips_every_spec_with_one_line(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SPEC.format(needs='"chat"') + SPEC.format(needs="").replace(
        "test_spec", "test_plain"))
    result = pytester.runpytest("--sidecar-url=http://127.0.0.1:9", "-rs")
    result.assert_outcomes(skipped=2)
    lines = [line for line in result.stdout.lines if "TARGET_UNREACHABLE" in line]
    assert len(lines) == 2, lines  # one line per spec, no traceback
    assert all("http://127.0.0.1:9 did not answer: ConnectError" in line
               and "; action: start the target" in line for line in lines)
    strict = pytester.runpytest("--sidecar-url=http://127.0.0.1:9", "--sidecar-strict")
    assert strict.ret != 0
    assert strict.parseoutcomes().get("passed", 0) == 0


def test_a_token_the_target_file_omits_is_never_sent_as_bearer_none(
        pytester: pytest.Pytester, fake_target_factory: Callable[..., Any]) -> None:
    """Tenant b has no read token: the tenants probe asks with the tokens given (and the
    read token only on a target that explains), and a spec needing that token skips."""
    target = fake_target_factory(require_auth=True)
    tenants = {"a": {"id": "tA", "tokens": {"write": "tok-aw-1", "read": "tok-ar-1"}},
               "b": {"id": "tB", "tokens": {"write": "tok-bw-1"}}}
    path = target.write(pytester.path / "target.json", ["chat", "auth", "tenants:2"],
                        tenants=tenants)
    pytester.makepyfile(test_spec="""
        import pytest

        @pytest.mark.needs("chat", "tenants:2")
        def test_reader_of_b(gateway_factory):
            gateway_factory("b", "read")
    """)
    result = pytester.runpytest(f"--sidecar-target={path}", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*NOT_DECLARED: no read token for tenant b*"])
    assert target.authorizations and not [a for a in target.authorizations if "None" in a]


def test_the_section_comes_from_the_clause_and_contract_marks_are_deprecated(
        pytester: pytest.Pytester, fake_target_factory: Callable[..., Any]) -> None:
    path = fake_target_factory().write(pytester.path / "target.json", ["chat"])
    pytester.makepyfile(test_spec="""
import pytest

@pytest.mark.clause("§2.3/status-object")
def test_new(evidence):
    evidence.record(ok=1)

@pytest.mark.contract("§9")
def test_old(evidence):
    evidence.record(ok=1)
""")
    result = pytester.runpytest(f"--sidecar-target={path}", "-W",
                                "default::pytest.PytestDeprecationWarning")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_spec.py:7: PytestDeprecationWarning: the "
                                 "contract(...) marker is deprecated*",
                                 '*@pytest.mark.contract("§9")'])
    assert result.stdout.str().count("PytestDeprecationWarning") == 1, "test_new warned too"
    sections = {r["name"]: r["contract"] for r in report(pytester)["results"]}
    assert sections == {"test_new": ["§2.3"], "test_old": ["§9"]}
