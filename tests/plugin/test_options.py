"""Settings as a user meets them: one red line for a bad value, sources in the header."""

from __future__ import annotations

import sys

import pytest


def test_a_bad_cli_value_is_one_red_line_with_exit_4(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--sidecar-timeout=abc")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert errors == ["ERROR: --sidecar-timeout: invalid value 'abc' from command line "
                      "--sidecar-timeout: not a duration; valid: a duration > 0: seconds, or "
                      "with a unit (500ms, 30s, 2m, 1h)"]


def test_env_and_ini_sources_are_named(pytester: pytest.Pytester,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIDECAR_URL", "not-a-url")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--sidecar-url: invalid value 'not-a-url' from environment "
                                 "SIDECAR_URL*valid: http(s)://host*"])
    monkeypatch.delenv("SIDECAR_URL")
    pytester.makeini("[pytest]\nsidecar_strict = perhaps\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--sidecar-strict: invalid value 'perhaps' from ini "
                                 "sidecar_strict*"])


def test_a_bad_target_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    path = pytester.path / "target.yaml"
    path.write_text("url: http://x:1\ncapabilities: [teleport]\n")
    result = pytester.runpytest(f"--sidecar-target={path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --sidecar-target: file */target.yaml: "
                                 "$.capabilities: unknown teleport; valid: chat*"])
    assert "Traceback" not in result.stderr.str()


def test_header_shows_settings_with_sources_and_masks_secrets(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    monkeypatch.setenv("SIDECAR_TRACE_DEADLINE", "12")
    result = pytester.runpytest("--sidecar-url=http://127.0.0.1:9",
                                "--sidecar-token-write=sct_verysecretvalue123")
    result.stdout.fnmatch_lines([
        "sidecar: target http://127.0.0.1:9; reports -> reports/runs/*Z-* (reports/latest "
        "once it finishes)",
        "sidecar:   --sidecar-url = http://127.0.0.1:9  (command line --sidecar-url)",
        "sidecar:   --sidecar-trace-deadline = 12.0  (environment SIDECAR_TRACE_DEADLINE)",
        "sidecar:   --sidecar-token-write = ***  (command line --sidecar-token-write)",
    ])
    assert "verysecret" not in result.stdout.str()
    assert "(default)" not in result.stdout.str()  # only what was given; defaults are in --help


def test_help_lists_every_option_with_env_and_ini(pytester: pytest.Pytester) -> None:
    from pytest_sidecar.options import OPTIONS, shown

    text = " ".join(pytester.runpytest("--help").stdout.str().split())
    for option in OPTIONS:
        assert option.cli in text and option.env in text, option.cli
        if option.default is not None:
            assert f"default {shown(option.default)};" in text, option.cli
    assert "Tenant A token with traces:read only. [secret, never shown: prefer the " \
           "environment variable; env SIDECAR_TOKEN_READ" in text
    for marker in ("needs(*capabilities)", "contract(*sections)"):
        assert marker in pytester.runpytest("--markers").stdout.str()


def test_help_and_collect_only_leave_the_last_reports_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_one():\n    pass\n")
    pytester.runpytest().assert_outcomes(passed=1)
    reports = pytester.path / "reports"

    def tree() -> dict[str, str]:
        return {str(p.relative_to(reports)): p.read_text() for p in reports.rglob("*")
                if p.is_file()} | {"latest ->": str((reports / "latest").resolve())}

    before = tree()
    assert {name.rpartition("/")[2] for name in before} == {
        "sidecar-events.jsonl", "sidecar-report.json", "sidecar-report.md", "contract.md",
        "conformance-report.yaml", "junit.xml", "latest ->"}
    pytester.runpytest("--help")
    pytester.runpytest("--collect-only")
    assert tree() == before
    # A -m that selects nothing runs nothing: no run directory, `latest` unchanged.
    nothing = pytester.runpytest("-m", "slow")
    assert nothing.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    nothing.stdout.fnmatch_lines(["sidecar: no test ran, so no report was written; "
                                  "reports/latest still points at the last run's"])
    # A usage error (a bad option value) writes nothing either.
    assert pytester.runpytest("--sidecar-timeout=soon").ret == pytest.ExitCode.USAGE_ERROR
    assert tree() == before


def test_a_separated_path_outside_the_project_is_a_usage_error(
        pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory) -> None:
    target = tmp_path_factory.mktemp("elsewhere") / "target.json"
    target.write_text('{"url": "http://127.0.0.1:9"}')
    result = pytester.runpytest("--sidecar-target", str(target))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --sidecar-target: write --sidecar-target=PATH "
                                 "(with '='): pytest reads a separate path as a test path*"])
    pytester.makepyfile("def test_one():\n    pass\n")
    pytester.runpytest(f"--sidecar-target={target}").assert_outcomes(passed=1)


def test_a_separated_path_that_the_controller_creates_does_not_crash_the_workers(
        pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A report dir outside the project that does not exist yet, given with a space: the
    controller's check lets it pass (pytest cannot mistake a missing path for a test
    path) and the controller makes it; workers start after that and must not check again
    (they used to, and crashed with a traceback each)."""
    pytester.makepyfile("def test_one():\n    pass\n")
    outside = tmp_path_factory.mktemp("elsewhere") / "new-dir"
    result = pytester.run(sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider",
                          "--sidecar-report-dir", str(outside))
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert (outside / "latest" / "sidecar-report.json").exists()
