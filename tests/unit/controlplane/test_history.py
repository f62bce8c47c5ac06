"""The control plane's pure parts: flakiness (Allure's rule, switch rate), the SLO
regression flag against run-to-run noise, the quality gate, the request whitelist and
the run's command."""

from __future__ import annotations

import pytest

from pytest_sidecar.controlplane.history import (
    evaluate_gate,
    figure_trends,
    flaky_tests,
    regression,
)
from pytest_sidecar.controlplane.launch import (
    RequestError,
    parse_request,
    pytest_argv,
    run_environment,
)
from pytest_sidecar.controlplane.settings import (
    ControlPlaneSettingError,
    Gate,
    Settings,
    from_environment,
    parse_suites,
)


def rows(*outcomes_by_run: dict[str, str]) -> list[tuple[int, str, str, str]]:
    return [(seq, f"run{seq}", nodeid, outcome) for seq, run in enumerate(outcomes_by_run, 1)
            for nodeid, outcome in run.items()]


def test_allure_flaky_needs_fail_pass_fail_and_skips_are_not_judgements() -> None:
    history = rows({"a": "failed", "b": "failed", "c": "passed", "d": "failed"},
                   {"a": "passed", "b": "passed", "c": "skipped", "d": "failed"},
                   {"a": "failed", "b": "passed", "c": "passed", "d": "failed"})
    found = {f["nodeid"]: f for f in flaky_tests(history)}
    assert found["a"]["allure_flaky"] and found["a"]["switch_rate"] == 1.0
    assert not found["b"]["allure_flaky"] and found["b"]["switches"] == 1  # fixed, not flaky
    assert "c" not in found and "d" not in found  # steady (a skip is no switch)
    assert list(found) == ["a", "b"]  # Allure-flaky first


def test_a_regression_is_a_move_beyond_the_noise_in_the_worse_direction() -> None:
    assert regression([1.0, 1.1, 0.9])["regressed"] is None  # too little history
    steady = [1.00, 1.04, 0.97, 1.02, 0.99]
    assert regression([*steady, 1.05])["regressed"] is False
    assert regression([*steady, 1.6])["regressed"] is True
    assert regression([*steady, 0.5])["regressed"] is False  # faster is no regression
    assert regression([1.0, 1.0, 1.0, 1.0, 1.04])["regressed"] is False  # 5 % floor


def test_a_throughput_regresses_when_it_falls() -> None:
    steady = [100.0, 104.0, 97.0, 102.0, 99.0]
    assert regression([*steady, 50.0], higher_is_worse=False)["regressed"] is True
    assert regression([*steady, 160.0], higher_is_worse=False)["regressed"] is False
    rows = [(seq, f"r{seq}", "output tokens/s", value, "tokens/s", "higher")
            for seq, value in enumerate([*steady, 50.0], 1)]
    [trend] = figure_trends(rows)
    assert trend["better"] == "higher" and trend["regressed"] is True
    assert [p["value"] for p in trend["points"]] == [*steady, 50.0]


def test_the_gate_judges_failures_tests_skips_and_slos() -> None:
    gate = Gate(max_failures=0, min_tests=2, max_skips=1)
    ok = evaluate_gate(gate, {"total": 3, "passed": 2, "skipped": 1}, [
        {"name": "p95 sentence", "outcome": "PASS"}])
    assert ok["passed"]
    bad = evaluate_gate(gate, {"total": 1, "failed": 1, "skipped": 2}, [
        {"name": "p95 token", "outcome": "INSUFFICIENT_DATA"}])
    assert [c["name"] for c in bad["checks"] if not c["ok"]] == ["failures", "tests", "skips",
                                                                  "slos"]


def test_the_request_whitelist_and_the_command_it_becomes() -> None:
    settings = Settings(targets={"staging": {"url": "https://staging.example"}},
                        suites={"e2e": ("tests/e2e",)})
    request = parse_request({"markers": "not slow", "keyword": "health", "strict": True,
                             "load": {"rate": 20, "duration": 5}}, settings)
    argv = pytest_argv(request, settings, "/data/runs/abc")
    assert argv[1:4] == ["-m", "pytest", "tests/e2e"]
    for expected in ("--sidecar-url=https://staging.example", "--sidecar-strict",
                     "--sidecar-rate=20", "--sidecar-load-duration=5",
                     "--sidecar-report-dir=/data/runs/abc"):
        assert expected in argv
    assert argv[argv.index("-m", 4) + 1] == "not slow" and argv[argv.index("-k") + 1] == "health"
    with pytest.raises(RequestError, match="unknown target"):
        parse_request({"target": "prod"}, settings)
    with pytest.raises(RequestError):
        parse_request({"markers": "--pdb"}, settings)


def test_settings_refuse_bad_values_without_echoing_tokens() -> None:
    with pytest.raises(ControlPlaneSettingError) as caught:
        from_environment({"AUTH_MODE": "static",
                          "AUTH_TOKENS_JSON": '{"s3cr3t-token": {"scopes": ["root"]}}'})
    assert "s3cr3t-token" not in str(caught.value) and "#1" in str(caught.value)
    with pytest.raises(ControlPlaneSettingError, match="AUTH_MODE"):
        from_environment({"AUTH_MODE": "ldap"})
    with pytest.raises(ControlPlaneSettingError):
        parse_suites('{"x": ["../outside"]}')
    assert "AUTH_TOKENS_JSON" not in run_environment({"AUTH_TOKENS_JSON": "{}", "CP_PORT": "1",
                                                      "PATH": "/bin"})


def test_the_cli_refuses_a_bad_port_in_one_line() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "pytest_sidecar.cli.controlplane", "serve",
                           "--port", "99999"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "a port from 0 to 65535" in done.stderr
    assert "Traceback" not in done.stderr
