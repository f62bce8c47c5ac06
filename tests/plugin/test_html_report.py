"""The HTML report as people open it: in a real browser (Debian's Chromium driven by
Playwright), the summary opens with the verdict, the environment names the target and
run, evidence is an inline table, a failure says what it certifies, and no `data:` link
is left for a browser to block. A screenshot is kept for the humans."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.browser import chromium_or_skip

SUITE = """
import pytest

@pytest.mark.needs("auth")
@pytest.mark.clause("§3/unauthorized")
def test_auth_is_enforced(sidecar_target, evidence):
    evidence.record(statuses=[{"token": "none", "status": 401}, {"token": "bad", "status": 403}],
                    url=sidecar_target.url)

@pytest.mark.clause("§2.3/status-object")
def test_a_status_field_is_missing(gateway, evidence):
    gateway.status("0123456789abcdef")
    evidence.record(field="stage")
    assert False, "no stage in the status object"
"""


def test_the_html_report_reads_well_in_chromium(
        pytester: pytest.Pytester, fake_target_factory: Callable[..., Any],
        fake_tokens: dict[str, dict[str, str]], pytestconfig: pytest.Config) -> None:
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    target = fake_target_factory(require_auth=True)
    path = target.write(pytester.path / "target.json", ["chat", "auth"])
    pytester.makepyfile(test_suite=SUITE)
    pytester.runpytest(f"--sidecar-target={path}", "--html=report.html",
                       "--self-contained-html").assert_outcomes(passed=1, failed=1)
    shot = Path(pytestconfig.rootpath) / "reports" / "self-tests" / "html-report.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.goto((pytester.path / "report.html").as_uri())
            page.wait_for_selector("#results-table")
            summary = page.inner_text("body")
            assert "Verdict" in summary and "security ✓ conformant" in summary
            assert "Next actions" in summary and "fix the target to meet" in summary
            environment = page.inner_text("#environment")
            assert "Sidecar run id" in environment and target.url in environment
            # The verdict opens the page: above the environment, its title says it.
            verdict_box = page.locator("ul.sidecar-verdict").bounding_box()
            environment_box = page.locator("#environment-header").bounding_box()
            assert verdict_box and environment_box, "both are laid out"
            assert verdict_box["y"] < environment_box["y"]
            assert page.title() == f"pytest-sidecar — {target.url} — not conformant (1 failing)"
            assert page.locator(".sidecar-verdict li.bad").count() >= 1  # in red
            assert "core" in page.inner_text("table.sidecar-profiles")
            # A failure says its reason, evidence and reproduce command, no fixture reprs.
            assert "object at 0x" not in (pytester.path / "report.html").read_text()
            assert page.locator('a[href^="data:"]').count() == 0
            page.get_by_text("Show all details").click()  # passed rows start collapsed
            evidence = page.locator("table.sidecar-evidence")
            assert evidence.count() == 2 and all(t.is_visible() for t in evidence.all())
            assert "401" in page.inner_text("table.sidecar-rows")
            assert "sections §2.3" in page.inner_text("body")
            # The section links into the contract copied beside this run's reports.
            link = page.locator('a[href$="contract.md#s2-3"]')
            assert link.count() == 1
            href = link.get_attribute("href")
            assert href, "the section link has an href"
            document = pytester.path / href.split("#")[0]
            assert '<a id="s2-3"></a>' in document.read_text()
            # The reproduce command: the failing spec's last request, no token in it.
            command = page.inner_text("pre.sidecar-reproduce")
            assert command.startswith("curl -sS -X GET ") and "/v1/traces/" in command
            assert "Bearer $SIDECAR_TOKEN_WRITE" in command
            assert not [t for t in fake_tokens["a"].values() if t in command]
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
