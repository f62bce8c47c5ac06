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
    markdown = (pytester.path / "reports" / "sidecar-report.md").read_text()
    headings = [line for line in markdown.splitlines() if line.startswith("## ")]
    # The plugin's section sits before the closing ones, with its own text.
    assert headings[-3:] == ["## Chaos journal", "## Next actions", "## Re-run command"]
    assert "1 specs passed beside the experiments." in markdown
