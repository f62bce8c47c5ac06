"""The web UI in a real browser (Playwright driving Debian's chromium): launch a run from
the form, watch the live page reach its end, open its report, find the flaky test in
history. Screenshots of each page go beside the self-tests' reports (and into their HTML
report when pytest-html writes one). Without a browser: a TOOL_MISSING skip."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.browser import chromium_or_skip

from .conftest import ADMIN, ControlPlane, kill_runs, launch, start, wait_state, write_suite


@pytest.fixture
def browser_page() -> Iterator[Page]:
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


@pytest.fixture
def shots(pytestconfig: pytest.Config, request: pytest.FixtureRequest) -> Iterator[Any]:
    """shots(page, name): a full-page screenshot under reports/self-tests/controlplane/,
    attached to the pytest-html report when one is written."""
    directory = Path(pytestconfig.rootpath) / "reports" / "self-tests" / "controlplane"
    directory.mkdir(parents=True, exist_ok=True)
    taken: list[Path] = []

    def take(page: Any, name: str) -> None:
        path = directory / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        taken.append(path)

    yield take
    html = pytestconfig.pluginmanager.getplugin("html")
    if html is not None and taken:
        import base64

        from pytest_html import extras

        request.node.extras = [extras.png(base64.b64encode(p.read_bytes()).decode(), p.stem)
                               for p in taken]


def test_launch_watch_report_and_history_in_a_browser(
        tmp_path: Path, browser_page: Page, shots: Any) -> None:
    plane = start(tmp_path / "data", write_suite(tmp_path / "suite"))
    page = browser_page
    try:
        assert page.request.get(plane.url + "/favicon.ico").status == 200
        page.goto(plane.url + "/")
        page.wait_for_selector("text=Cannot show this page")  # no token yet: a 401 shown
        page.fill("#token", ADMIN)
        page.click("#token-form button")
        page.wait_for_selector("text=No runs yet")
        assert page.inner_text("#signed-in").startswith("Signed in as admin")
        page.click("nav >> text=Launch")
        page.wait_for_selector("#launch-form")
        assert "default 40 req/s" in page.inner_text("#launch-form")
        assert page.get_attribute("#markers", "placeholder") == "e.g. not disruptive"
        assert "disruptive" in page.inner_text("#launch-form")  # the project's markers
        page.select_option("#suite", "demo")
        page.get_by_label("Keyword (-k)").fill("quick or flaky")
        page.click("text=Launch run")
        page.wait_for_url("**/#/runs/*")
        run_id = page.url.rsplit("/", 1)[1]
        page.wait_for_selector("#run-status.failed")  # the live page reached the end
        assert page.inner_text("#run-status").startswith("finished: failed")
        assert page.locator("#live-tests tr").count() == 3
        assert page.get_by_role("progressbar").get_attribute("value") == \
            page.get_by_role("progressbar").get_attribute("max")
        assert "one is not two" in page.inner_text("#live-causes")
        page.wait_for_selector("#profiles")
        assert "✗ gate" in page.inner_text("#finished")
        assert page.locator("#failures details").count() == 2
        page.locator("#failures summary").first.click()
        failure = page.inner_text("#failures details[open]")
        assert "one is not two" in failure or "flaky" in failure
        assert "{" not in failure.split("\n")[1]  # the reason, not a JSON dump
        page.wait_for_selector("#log:has-text('passed')")  # pytest's own output
        shots(page, "run")
        # Each report opens as a document, intact: the HTML page ran its script
        # (sandboxed), the Markdown is UTF-8, the JSON parses.
        with page.expect_popup() as popup:
            page.click("a.report-link[data-format=html]")
        report = popup.value
        report.wait_for_selector("#results-table tbody")
        assert "test_quick_fail" in report.inner_text("#results-table")
        assert "still tests running" not in report.inner_text("body")
        report.close()
        with page.expect_popup() as popup:
            page.click("a.report-link[data-format=md]")
        markdown = popup.value
        markdown.wait_for_load_state()
        text = markdown.inner_text("body")
        assert "core – " in text or "core ✗" in text, text[:300]
        assert "â€" not in text and "Â·" not in text  # no mojibake
        markdown.close()
        answer = page.request.get(f"{plane.url}/api/testruns/{run_id}/report.json")
        assert answer.ok and answer.json()["summary"]["failed"] == 2  # the cookie alone
        with page.expect_download() as download:
            page.click("a.report-download[data-format=md]")
        assert download.value.suggested_filename == f"{run_id}-report.md"
        # A reload and a deep link keep the session; the token stays in memory only.
        page.reload()
        page.wait_for_selector("#profiles")
        assert "Signed in as admin" in page.inner_text("#signed-in")
        with plane.client() as client:  # two more runs: the flaky test fails, passes, fails
            for _ in range(2):
                wait_state(client, launch(client), ("passed", "failed"))
        page.click("nav >> text=Runs")
        page.wait_for_selector(f"a[href='#/runs/{run_id}']")
        assert page.locator("#runs tbody tr").count() == 3
        assert "-k quick or flaky" in page.inner_text("#runs")  # the selection shown
        page.fill("#filter-text", run_id)
        assert page.locator("#runs tbody tr").count() == 1
        page.fill("#filter-text", "")
        page.select_option("#filter-state", "passed")
        assert page.locator("#runs tbody tr").count() == 0
        page.select_option("#filter-state", "")
        shots(page, "runs")
        page.click("nav >> text=History")
        page.wait_for_selector("#flaky")
        flaky = page.inner_text("#flaky")
        assert "test_flaky" in flaky and "yes" in flaky and "F P F" in flaky
        assert "test_quick_fail" not in flaky
        assert page.locator("#gates tr").count() == 3
        history = page.inner_text("main")  # no -m slo run streamed: the section says so
        assert "LLM latency figures" in history and "No LLM figures yet" in history
        shots(page, "history")
        page.click("#flaky a")  # one test across runs
        page.wait_for_selector("#outcome-strip")
        assert page.locator("#outcome-strip .cell").all_inner_texts() == ["F", "P", "F"]
        assert page.locator("svg.chart .axis").count() == 2
        assert page.locator("svg.chart .value").count() == 3
        assert "run " in page.inner_text("#first-failure")
        shots(page, "test-history")
        # Writes need the token itself (the cookie only reads): after the reload it is
        # asked for again, then a run is re-run with the same selection.
        assert "reads only" in page.inner_text("#signed-in")
        page.fill("#token", ADMIN)
        page.click("#token-form button")
        page.click("nav >> text=Runs")
        page.wait_for_selector(f"tr[data-run='{run_id}'] button.rerun")
        page.click(f"tr[data-run='{run_id}'] button.rerun")
        page.wait_for_url(re.compile(rf"#/runs/(?!{run_id})[0-9a-f]{{12}}$"))
        page.wait_for_selector("#run-status.failed")
        assert "-k quick or flaky" in page.inner_text("main")
        page.click("#sign-out")
        page.wait_for_selector("text=Cannot show this page")
    finally:
        plane.stop()
        kill_runs(tmp_path)


def test_the_log_view_follows_a_running_run(tmp_path: Path, browser_page: Page,
                                            shots: Any) -> None:
    plane = start(tmp_path / "data", write_suite(tmp_path / "suite"))
    page = browser_page
    try:
        with plane.client() as client:
            run_id = launch(client, suite="slow")
            wait_state(client, run_id, ("running",))
        page.goto(plane.url + "/")
        page.fill("#token", ADMIN)
        page.click("#token-form button")
        page.goto(f"{plane.url}/#/runs/{run_id}")
        page.wait_for_selector("#log:has-text('test_slow.py')", timeout=30_000)
        assert page.inner_text("#run-status").startswith(("running", "queued"))
        assert page.get_attribute("#log-panel", "open") is not None
        assert page.inner_text("#elapsed").endswith("s")
        shots(page, "live-log")
        page.click("text=Cancel")
        page.wait_for_selector("#run-status.canceled", timeout=60_000)
    finally:
        plane.stop()
        kill_runs(tmp_path)


def test_the_ui_works_without_a_token_when_auth_is_off(
        tmp_path: Path, browser_page: Page) -> None:
    plane: ControlPlane = start(tmp_path / "data", write_suite(tmp_path / "suite"),
                                AUTH_MODE="none")
    try:
        page = browser_page
        page.goto(plane.url + "/#/launch")
        page.wait_for_selector("#launch-form")
        assert page.locator("label[for=suite]").inner_text() == "Suite"
        # A launch with no token at all; its tests each report twice (call, teardown).
        page.select_option("#suite", "teardown")
        page.click("text=Launch run")
        page.wait_for_url("**/#/runs/*")
        page.wait_for_selector("#run-status.failed")
        rows = page.locator("#live-tests tr")
        assert rows.count() == 2, "one row per test, updated by its teardown's event"
        assert [rows.nth(n).locator("td").nth(1).inner_text() for n in range(2)] == \
            ["error", "error"]
        causes = page.locator("#live-causes li").all_inner_texts()
        assert sum(int(cause.split(" × ")[0]) for cause in causes) == 2, causes
    finally:
        plane.stop()
        kill_runs(tmp_path)


def test_a_suite_run_against_the_embedded_stack_from_the_browser(
        tmp_path: Path, browser_page: Page, shots: Any, pytestconfig: pytest.Config) -> None:
    """The issue's end-to-end: the real suite (its health specs) against the embedded
    reference stack, launched from the form, ends passed with its report and gate."""
    root = Path(pytestconfig.rootpath)
    plane = start(tmp_path / "data", root, AUTH_MODE="none",
                  CP_SUITES_JSON='{"health": ["tests/e2e/test_health_readiness.py"]}')
    page = browser_page
    try:
        page.goto(plane.url + "/#/launch")
        page.select_option("#suite", "health")
        page.click("text=Launch run")
        page.wait_for_url("**/#/runs/*")
        page.wait_for_selector("#run-status.passed")
        assert page.locator("#live-tests tr").count() >= 2
        page.wait_for_selector("#profiles")
        assert "conformant" in page.inner_text("#profiles")
        assert "✓ gate" in page.inner_text("#finished")
        shots(page, "suite-run")
        page.click("nav >> text=History")
        page.wait_for_selector("#gates")
        assert "✓ gate" in page.inner_text("#gates")
    finally:
        plane.stop()
        kill_runs(tmp_path)
