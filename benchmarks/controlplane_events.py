"""Event latency of the control plane: from a test finishing in pytest to its
`test` event reaching each of 20 live viewers.

    python benchmarks/controlplane_events.py [--viewers 20] [--tests 40] [--browser]

A demo suite's tests each note the wall-clock time as they return. The viewers note
when each `test` event reaches them:
- by default, SSE clients reading /api/testruns/{id}/events as the web UI's fetch reader
  does;
- with `--browser`, the web UI itself: one headless Chromium (Debian's `chromium`, driven
  by Playwright), a browser context per viewer (each has its own connection pool: one
  profile would hold only 6 streams to one host), each on the run's live page, where a
  MutationObserver notes when each test's row appears.
The suite's first test waits until every viewer is watching, so no event reaches a
viewer as history. Prints p50/p99/max over every (test, viewer) pair. The path measured:
pytest's report -> the plugin's event log line -> the control plane's tail (polled every
0.1 s) -> the store -> every viewer (-> the page's DOM with --browser).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

TEST = '''
import json, time, pathlib, pytest

HERE = pathlib.Path(__file__).parent


def test_0_waits_for_the_viewers():
    deadline = time.time() + 120
    while not (HERE / "go").exists() and time.time() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize("n", range({tests}))
def test_step(n, request):
    time.sleep(0.15)
    with open(HERE / "finished.jsonl", "a") as out:
        out.write(json.dumps([request.node.nodeid, time.time()]) + "\\n")
'''

# In each viewer's page: when a test's row first appears, note the wall-clock time.
OBSERVE = """
window.__seen = {};
new MutationObserver(records => {
  const now = Date.now() / 1000;
  for (const record of records) for (const node of record.addedNodes) {
    const id = node.dataset && node.dataset.nodeid;
    if (id && !(id in window.__seen)) window.__seen[id] = now;
  }
}).observe(document, {childList: true, subtree: true});
"""


def watch_over_http(url: str, run_id: str, viewers: int, ready: Callable[[], None]
                    ) -> list[dict[str, float]]:
    """Each SSE viewer's arrival time per test."""
    seen: list[dict[str, float]] = [{} for _ in range(viewers)]
    connected = threading.Barrier(viewers, action=ready)

    def view(index: int) -> None:
        with httpx.stream("GET", f"{url}/api/testruns/{run_id}/events",
                          timeout=120) as response:
            connected.wait()
            for line in response.iter_lines():
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    if event["type"] == "test":
                        seen[index][event["nodeid"]] = time.time()
                    elif event["type"] == "end":
                        return

    threads = [threading.Thread(target=view, args=(i,)) for i in range(viewers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    return seen


def watch_in_browsers(url: str, run_id: str, viewers: int, ready: Callable[[], None]
                      ) -> list[dict[str, float]]:
    """Each browser viewer's time per test row appearing on the live page."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("--browser needs Debian's chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        try:
            pages = []
            for _ in range(viewers):
                page = browser.new_context().new_page()
                page.add_init_script(OBSERVE)
                page.goto(f"{url}/#/runs/{run_id}")
                page.wait_for_selector("#live-tests", state="attached")
                pages.append(page)
            ready()
            for page in pages:
                page.wait_for_selector("#run-status.passed", timeout=300_000)
            return [page.evaluate("window.__seen") for page in pages]
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", type=int, default=20, help="live viewers (default 20)")
    parser.add_argument("--tests", type=int, default=40, help="tests in the run (default 40)")
    parser.add_argument("--browser", action="store_true",
                        help="the viewers are the web UI in headless Chromium")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "suite").mkdir()
        (root / "suite" / "test_steps.py").write_text(TEST.format(tests=args.tests))
        env = {**os.environ, "AUTH_MODE": "none", "CP_SUITES_JSON": '{"steps": ["."]}',
               "PYTEST_ADDOPTS": "-p no:schemathesis -p no:hypothesispytest"}
        plane = subprocess.Popen(
            [sys.executable, "-m", "pytest_sidecar.cli.controlplane", "serve", "--port", "0",
             "--data-dir", str(root / "data"), "--suite-root", str(root / "suite")],
            stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert plane.stdout is not None
            url = re.search(r"http://\S+", plane.stdout.readline()).group(0)  # type: ignore
            run_id = httpx.post(url + "/api/testruns", json={"suite": "steps"}).json()["id"]
            watch = watch_in_browsers if args.browser else watch_over_http
            seen = watch(url, run_id, args.viewers, (root / "suite" / "go").touch)
            finished = dict(json.loads(line) for line in
                            (root / "suite" / "finished.jsonl").read_text().splitlines())
        finally:
            plane.terminate()
            plane.wait(30)
    delays = sorted((at - finished[nodeid]) * 1000 for viewer in seen
                    for nodeid, at in viewer.items() if nodeid in finished)
    expected = args.tests * args.viewers
    kind = "browser" if args.browser else "SSE"
    print(f"{len(delays)} of {expected} (test, viewer) events seen by {args.viewers} "
          f"{kind} viewers")
    if delays:
        pick = lambda q: delays[min(len(delays) - 1, round(q * (len(delays) - 1)))]  # noqa: E731
        print(f"test finished -> {kind} viewer: p50 {pick(0.5):.0f} ms, p99 {pick(0.99):.0f} "
              f"ms, max {delays[-1]:.0f} ms")


if __name__ == "__main__":
    main()
