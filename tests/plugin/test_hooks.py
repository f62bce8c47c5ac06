"""The extension points of hookspecs.py: a conftest plugs in a report section and a probe
without editing the plugin (pytester, in process)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

CONFTEST = """
def pytest_sidecar_report_sections(report):
    passed = report["summary"]["passed"]
    return ["## Chaos journal", "", f"{passed} specs passed beside the experiments."]


def pytest_sidecar_probes():
    def auth(target, timeout):
        return "the conftest's probe says no"
    return {"auth": auth}


def pytest_sidecar_fault_backends(target):
    return ["a backend for " + target.url]
"""

SPEC = """
import pytest

@pytest.mark.needs("auth")
def test_auth(sidecar_target):
    pass


def test_backends(sidecar_target, pytestconfig, evidence):
    backends = pytestconfig.hook.pytest_sidecar_fault_backends(target=sidecar_target)
    assert backends == [["a backend for " + sidecar_target.url]]
    evidence.record(backends=len(backends))
"""


def test_a_conftest_adds_a_report_section_a_probe_and_a_fault_backend(
        pytester: pytest.Pytester, fake_target_factory: Callable[..., Any]) -> None:
    target = fake_target_factory(require_auth=True)  # the built-in probe would pass
    path = target.write(pytester.path / "target.json", ["chat", "auth"])
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_spec=SPEC)
    result = pytester.runpytest(f"--sidecar-target={path}", "-rfE")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*DECLARED_BUT_MISSING: auth: the conftest's probe says no*"])
    markdown = (pytester.path / "reports" / "latest" / "sidecar-report.md").read_text()
    headings = [line for line in markdown.splitlines() if line.startswith("## ")]
    # The plugin's section sits before the closing one, with its own text.
    assert headings[-2:] == ["## Chaos journal", "## Re-run command"]
    assert "1 specs passed beside the experiments." in markdown


def test_the_terminal_ends_with_the_verdict_and_the_html_opens_with_it(
        pytester: pytest.Pytester, fake_target_factory: Callable[..., Any]) -> None:
    target = fake_target_factory(require_auth=True)
    path = target.write(pytester.path / "target.json", ["chat", "auth"])
    pytester.makepyfile(test_spec="""
import pytest

@pytest.mark.needs("auth")
def test_auth(sidecar_target, evidence):
    evidence.record(url=sidecar_target.url)

@pytest.mark.needs("explain")
def test_explain(sidecar_target):
    pass
""")
    result = pytester.runpytest(f"--sidecar-target={path}", "--html=report.html")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines([
        "*- sidecar verdict -*",
        f"Target {target.url} (file *); declared: auth, chat, tenants:2",
        "Profiles: core – untested · openai – not declared · explain – not declared · "
        "security ✓ conformant*",
        "SLOs: none measured in this run*",
        "Action 1: run the explainer and declare 'explain' (1 test; contract §2.2-2.4)",
    ])
    page = (pytester.path / "report.html").read_text()
    assert "<h2>Verdict</h2>" in page and "security ✓ conformant" in page
